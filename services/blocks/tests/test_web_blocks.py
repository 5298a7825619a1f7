"""HTTP request, webhook and RSS blocks against a real local web server."""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import hmac
from typing import Any

import pytest

from agentloom_blocks.library.http_request import HttpRequestBlock
from agentloom_blocks.library.rss_feed import RssFeedBlock
from agentloom_blocks.library.send_webhook import SendWebhookBlock
from agentloom_blocks.net import BlockedAddressError
from agentloom_blocks.sdk import Block, BlockContext, BlockError, RetryableBlockError
from agentloom_devkit.fake_web import FakeWeb


@pytest.fixture
def local(context: BlockContext, fake_web: FakeWeb) -> BlockContext:
    """The context with the operator setting that allows the local server."""
    fake_web.clear_requests()
    config = dataclasses.replace(context.config, allow_private_network=True)
    return dataclasses.replace(context, config=config)


async def run(block: type[Block], context: BlockContext, **input_data: Any) -> dict[str, Any]:
    return {pin: value async for pin, value in block().run(block.Input(**input_data), context)}


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        ({"json_body": {"a": [1, 2]}}, {"json": {"a": [1, 2]}, "form": None}),
        ({"form_body": {"q": "bees & ants"}}, {"form": {"q": "bees & ants"}, "json": None}),
        ({"text_body": "plain words"}, {"body": "plain words", "json": None}),
    ],
)
async def test_bodies_methods_headers_and_query_reach_the_server(
    local: BlockContext, fake_web: FakeWeb, body: dict[str, Any], expected: dict[str, Any]
) -> None:
    outputs = await run(
        HttpRequestBlock,
        local,
        url=f"{fake_web.url}/echo",
        method="PUT",
        headers={"X-Token": "t0k"},
        query={"page": "2"},
        **body,
    )

    assert outputs["status"] == 200
    (received,) = fake_web.requests()
    assert received["method"] == "PUT"
    assert received["headers"]["x-token"] == "t0k"
    assert received["query"] == {"page": "2"}
    assert {key: received[key] for key in expected} == expected
    assert outputs["response"]["method"] == "PUT"  # the JSON reply comes back as data


async def test_a_5xx_answer_goes_to_server_error(local: BlockContext, fake_web: FakeWeb) -> None:
    outputs = await run(HttpRequestBlock, local, url=f"{fake_web.url}/status/503")
    assert outputs["status"] == 503
    assert outputs["server_error"] == {"status": 503}
    assert "response" not in outputs


async def test_redirects_are_followed_unless_asked_not_to(
    local: BlockContext, fake_web: FakeWeb
) -> None:
    url = f"{fake_web.url}/redirect?to=/json"
    followed = await run(HttpRequestBlock, local, url=url)
    assert followed["response"]["name"] == "agentloom"
    kept = await run(HttpRequestBlock, local, url=url, follow_redirects=False)
    assert kept["status"] == 302
    assert kept["headers"]["location"] == "/json"


async def test_only_one_body_at_a_time(local: BlockContext, fake_web: FakeWeb) -> None:
    with pytest.raises(BlockError, match="at most one of"):
        await run(HttpRequestBlock, local, url=fake_web.url, json_body=1, text_body="x")
    assert fake_web.requests() == []


async def test_a_local_server_is_refused_without_the_operator_setting(
    context: BlockContext, fake_web: FakeWeb
) -> None:
    with pytest.raises(BlockedAddressError):
        await run(HttpRequestBlock, context, url=f"{fake_web.url}/json")


async def test_a_slow_server_is_a_retryable_timeout(local: BlockContext, fake_web: FakeWeb) -> None:
    with pytest.raises(RetryableBlockError, match="did not answer"):
        await run(HttpRequestBlock, local, url=f"{fake_web.url}/slow/3", timeout_s=0.3)


async def test_a_signed_webhook_verifies_with_the_standard_scheme(
    local: BlockContext, fake_web: FakeWeb
) -> None:
    secret = "whsec_" + base64.b64encode(b"0123456789abcdef").decode()
    outputs = await run(
        SendWebhookBlock, local, url=f"{fake_web.url}/echo", payload={"n": 1}, secret=secret
    )

    assert outputs["status"] == 200
    (received,) = fake_web.requests()
    headers = received["headers"]
    assert headers["webhook-id"] == f"msg_{local.node_execution_id}"
    signed = f"{headers['webhook-id']}.{headers['webhook-timestamp']}.{received['body']}"
    digest = hmac.new(b"0123456789abcdef", signed.encode(), hashlib.sha256).digest()
    assert headers["webhook-signature"] == "v1," + base64.b64encode(digest).decode()
    assert received["json"] == {"n": 1}


@pytest.mark.parametrize(("status", "retryable"), [(500, True), (429, True), (400, False)])
async def test_a_failing_webhook_says_whether_to_retry(
    local: BlockContext, fake_web: FakeWeb, status: int, retryable: bool
) -> None:
    with pytest.raises(BlockError, match=f"answered {status}") as caught:
        await run(SendWebhookBlock, local, url=f"{fake_web.url}/status/{status}", payload={})
    assert caught.value.retryable is retryable


async def test_the_feed_gives_every_entry(local: BlockContext, fake_web: FakeWeb) -> None:
    outputs = await run(RssFeedBlock, local, url=f"{fake_web.url}/feed.xml")
    assert [e["title"] for e in outputs["entries"]] == ["First post", "Second post"]
    assert outputs["entries"][1]["published"] == "2025-01-07T12:30:00+00:00"


async def test_a_page_that_is_no_feed_fails_clearly(local: BlockContext, fake_web: FakeWeb) -> None:
    with pytest.raises(BlockError, match="not a readable RSS or Atom feed"):
        await run(RssFeedBlock, local, url=f"{fake_web.url}/bytes/10")
