"""Sends an email over SMTP (the user's server, or the platform's relay)."""

from __future__ import annotations

import asyncio
import enum
import socket
from collections.abc import AsyncIterator
from email.message import EmailMessage
from email.utils import make_msgid
from typing import Any

import aiosmtplib
from pydantic import BaseModel, Field

from agentloom_blocks.net import NetworkPolicy
from agentloom_blocks.sdk import (
    Block,
    BlockContext,
    BlockError,
    BlockExample,
    CredentialsField,
    RetryableBlockError,
)


class Security(enum.StrEnum):
    STARTTLS = "starttls"
    SSL = "ssl"
    NONE = "none"


class SendEmailBlock(Block):
    id = "send_email_block"
    name = "Send email"
    description = (
        "Sends an email over SMTP: through `smtp_host` with your SMTP credentials, or through "
        "the platform's mail relay when no host is given. TLS is STARTTLS by default, or SSL "
        "from the first byte, or none (only for servers on a trusted network)."
    )
    categories = ("communication",)
    cost_per_run = 1
    credentials = (
        CredentialsField("smtp", "user_password", "The SMTP server's username and password."),
    )

    class Input(BaseModel):
        to: list[str] = Field(min_length=1, title="To", description="The recipients' addresses.")
        subject: str = Field(title="Subject", description="The subject line.")
        body: str = Field(title="Body", description="The message.")
        body_is_html: bool = Field(
            default=False, title="HTML body", description="Send the body as HTML."
        )
        cc: list[str] = Field(default_factory=list, title="Cc", description="Copied addresses.")
        from_address: str | None = Field(
            default=None,
            title="From",
            description="The sender's address (the SMTP username when empty).",
        )
        smtp_host: str | None = Field(
            default=None,
            title="SMTP host",
            description="Your SMTP server (the platform's relay when empty).",
            json_schema_extra={"advanced": True},
        )
        smtp_port: int | None = Field(
            default=None,
            ge=1,
            le=65535,
            title="SMTP port",
            description="587 for STARTTLS, 465 for SSL (the relay's when empty).",
            json_schema_extra={"advanced": True},
        )
        security: Security | None = Field(
            default=None,
            title="Security",
            description="starttls, ssl or none (starttls, or the relay's, when empty).",
            json_schema_extra={"advanced": True},
        )
        timeout_s: float = Field(
            default=30.0,
            gt=0,
            le=120,
            title="Timeout (s)",
            description="How long to wait for the SMTP server.",
            json_schema_extra={"advanced": True},
        )

    class Output(BaseModel):
        status: str = Field(title="Status", description="'sent' once the server accepted it.")
        recipients: list[str] = Field(title="Recipients", description="Everyone it went to.")

    examples = (
        BlockExample(
            input={
                "to": ["bob@example.com"],
                "subject": "Report ready",
                "body": "Your weekly report is ready.",
                "from_address": "loom@example.com",
            },
            outputs=[("status", "sent"), ("recipients", ["bob@example.com"])],
            description="Through the platform's relay (a local SMTP server in tests).",
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        config = context.config
        host = input.smtp_host or config.smtp_host
        if not host:
            raise BlockError("no SMTP server: give smtp_host (no platform relay is configured)")
        security = input.security or (
            Security(config.smtp_security) if not input.smtp_host else Security.STARTTLS
        )
        default_port = {Security.SSL: 465, Security.STARTTLS: 587, Security.NONE: 25}[security]
        port = input.smtp_port or (config.smtp_port if not input.smtp_host else default_port)
        username = context.credential("smtp", "username")
        password = context.credential("smtp", "password")
        sender = input.from_address or username
        if not sender:
            raise BlockError("give from_address (there is no SMTP username to send as)")

        message = EmailMessage()
        message["From"], message["To"], message["Subject"] = (
            sender,
            ", ".join(input.to),
            input.subject,
        )
        if input.cc:
            message["Cc"] = ", ".join(input.cc)
        message["Message-ID"] = make_msgid(domain=sender.rpartition("@")[2] or None)
        message.set_content(input.body, subtype="html" if input.body_is_html else "plain")
        recipients = [*input.to, *input.cc]

        sock = None
        if input.smtp_host:  # a user's server: the SSRF guard applies, as for HTTP
            sock = await _connect(NetworkPolicy.from_config(config), host, port, input.timeout_s)
        try:
            await aiosmtplib.send(
                message,
                recipients=recipients,
                hostname=host,
                port=None if sock else port,
                sock=sock,
                username=username if username and password else None,
                password=password if username and password else None,
                use_tls=security is Security.SSL,
                start_tls=security is Security.STARTTLS,
                timeout=input.timeout_s,
            )
        except aiosmtplib.SMTPAuthenticationError as exc:
            raise BlockError(f"the SMTP server refused the login: {exc.message}") from None
        except aiosmtplib.SMTPRecipientsRefused as exc:
            refused = ", ".join(r.recipient for r in exc.recipients)
            raise BlockError(f"the SMTP server refused the recipients: {refused}") from None
        except aiosmtplib.SMTPResponseException as exc:
            error = RetryableBlockError if 400 <= exc.code < 500 else BlockError
            raise error(f"the SMTP server answered {exc.code}: {exc.message}") from None
        except (aiosmtplib.SMTPTimeoutError, aiosmtplib.SMTPConnectError, OSError) as exc:
            raise RetryableBlockError(f"could not reach the SMTP server: {exc}") from None
        except aiosmtplib.SMTPException as exc:
            raise BlockError(f"SMTP failed: {exc}") from None
        finally:
            if sock is not None:
                sock.close()
        yield "status", "sent"
        yield "recipients", recipients


async def _connect(policy: NetworkPolicy, host: str, port: int, timeout_s: float) -> socket.socket:
    """A socket connected to the checked address of `host` (resolved once, then pinned)."""
    address = (await policy.resolve(host, port))[0]
    family = socket.AF_INET6 if address.version == 6 else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    try:
        async with asyncio.timeout(timeout_s):
            await asyncio.get_running_loop().sock_connect(sock, (str(address), port))
    except (OSError, TimeoutError) as exc:
        sock.close()
        raise RetryableBlockError(f"could not reach the SMTP server {host}:{port}: {exc}") from None
    return sock
