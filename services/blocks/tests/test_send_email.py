"""The email block against real local SMTP servers (aiosmtpd)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from typing import Any

import pytest

from agentloom_blocks.library.send_email import SendEmailBlock
from agentloom_blocks.net import BlockedAddressError
from agentloom_blocks.sdk import BlockContext, BlockError
from agentloom_devkit.fake_smtp import FakeSmtp

MAIL = {"to": ["bob@example.com"], "subject": "Hello", "body": "Hi Bob,\nthe report is ready."}


@pytest.fixture(scope="module")
def auth_smtp() -> Iterator[FakeSmtp]:
    with FakeSmtp(auth={"loom": "p4ss"}) as server:
        yield server


async def send(context: BlockContext, **input_data: Any) -> list[Any]:
    block = SendEmailBlock()
    return [o async for o in block.run(SendEmailBlock.Input(**input_data), context)]


async def test_the_relay_delivers_the_message(context: BlockContext, fake_smtp: FakeSmtp) -> None:
    fake_smtp.clear()
    outputs = await send(context, **MAIL, cc=["carol@example.com"], from_address="loom@example.com")

    assert outputs == [("status", "sent"), ("recipients", ["bob@example.com", "carol@example.com"])]
    (envelope,) = fake_smtp.envelopes()
    assert envelope.mail_from == "loom@example.com"
    assert envelope.rcpt_tos == ["bob@example.com", "carol@example.com"]
    (message,) = fake_smtp.messages()
    assert message["Subject"] == "Hello"
    assert message["Cc"] == "carol@example.com"
    assert message.get_content().replace("\r\n", "\n") == "Hi Bob,\nthe report is ready.\n"


async def test_a_users_server_gets_their_credentials(
    context: BlockContext, auth_smtp: FakeSmtp
) -> None:
    config = dataclasses.replace(context.config, allow_private_network=True)
    users = dataclasses.replace(
        context, config=config, credentials={"smtp": {"username": "loom", "password": "p4ss"}}
    )
    outputs = await send(
        users, **MAIL, smtp_host="127.0.0.1", smtp_port=auth_smtp.port, security="none"
    )

    assert outputs[0] == ("status", "sent")
    (envelope,) = auth_smtp.envelopes()
    assert envelope.login == "loom"
    assert envelope.mail_from == "loom"  # the username, as no from_address was given


async def test_a_wrong_password_is_a_permanent_failure(
    context: BlockContext, auth_smtp: FakeSmtp
) -> None:
    config = dataclasses.replace(context.config, allow_private_network=True)
    users = dataclasses.replace(
        context, config=config, credentials={"smtp": {"username": "loom", "password": "nope"}}
    )
    with pytest.raises(BlockError, match="refused the login") as caught:
        await send(users, **MAIL, smtp_host="127.0.0.1", smtp_port=auth_smtp.port, security="none")
    assert not caught.value.retryable
    assert "nope" not in str(caught.value)


async def test_a_users_smtp_host_passes_the_ssrf_guard(
    context: BlockContext, fake_smtp: FakeSmtp
) -> None:
    fake_smtp.clear()
    with pytest.raises(BlockedAddressError):
        await send(
            context,
            **MAIL,
            from_address="a@example.com",
            smtp_host="127.0.0.1",
            smtp_port=fake_smtp.port,
            security="none",
        )
    assert fake_smtp.envelopes() == []


async def test_starttls_is_required_unless_turned_off(
    context: BlockContext, fake_smtp: FakeSmtp
) -> None:
    config = dataclasses.replace(context.config, allow_private_network=True)
    local = dataclasses.replace(context, config=config)
    with pytest.raises(BlockError, match="STARTTLS"):
        await send(
            local,
            **MAIL,
            from_address="a@example.com",
            smtp_host="127.0.0.1",
            smtp_port=fake_smtp.port,
        )


async def test_without_any_server_it_says_so(context: BlockContext) -> None:
    config = dataclasses.replace(context.config, smtp_host=None)
    with pytest.raises(BlockError, match="no SMTP server"):
        await send(dataclasses.replace(context, config=config), **MAIL, from_address="a@b.c")
