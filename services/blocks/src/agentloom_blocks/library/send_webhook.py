"""Sends a JSON payload to a webhook, signed per the Standard Webhooks spec when asked."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field

from agentloom_blocks.library.http_request import decode_body
from agentloom_blocks.net import fetch
from agentloom_blocks.sdk import (
    EXAMPLE_SERVER_URL,
    Block,
    BlockContext,
    BlockError,
    BlockExample,
    RetryableBlockError,
)


def sign(secret: str, message_id: str, timestamp: int, body: bytes) -> str:
    """`v1,<base64 HMAC-SHA256>` of "id.timestamp.body"; `whsec_` secrets are base64."""
    key = (
        base64.b64decode(secret.removeprefix("whsec_"))
        if secret.startswith("whsec_")
        else secret.encode()
    )
    signed = f"{message_id}.{timestamp}.".encode() + body
    return "v1," + base64.b64encode(hmac.new(key, signed, hashlib.sha256).digest()).decode()


class SendWebhookBlock(Block):
    id = "send_webhook_block"
    name = "Send webhook"
    description = (
        "POSTs `payload` as JSON to a webhook URL and yields the status and the reply. With a "
        "`secret`, the request carries webhook-id, webhook-timestamp and webhook-signature "
        "headers (Standard Webhooks), so the receiver can verify it. A 5xx or 429 reply is a "
        "retryable failure; other 4xx replies fail the node."
    )
    categories = ("communication", "web")
    cost_per_run = 1

    class Input(BaseModel):
        url: str = Field(title="URL", description="The webhook's http(s) URL.")
        payload: Any = Field(title="Payload", description="The JSON value to send.")
        secret: str | None = Field(
            default=None,
            title="Signing secret",
            description="Signs the request (Standard Webhooks); `whsec_...` or plain text.",
            json_schema_extra={"secret": True, "advanced": True, "format": "password"},
        )
        headers: dict[str, str] = Field(
            default_factory=dict,
            title="Headers",
            description="Extra request headers.",
            json_schema_extra={"advanced": True},
        )

    class Output(BaseModel):
        status: int = Field(title="Status", description="The receiver's HTTP status.")
        response: Any = Field(title="Response", description="The receiver's reply body.")

    examples = (
        BlockExample(
            input={"url": f"{EXAMPLE_SERVER_URL}/status/202", "payload": {"event": "done"}},
            outputs=[("status", 202), ("response", {"status": 202})],
        ),
        BlockExample(
            input={"url": f"{EXAMPLE_SERVER_URL}/status/410", "payload": {}},
            outputs=[("error", 'the webhook answered 410: {"status":410}')],
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        body = json.dumps(input.payload, ensure_ascii=False, default=str).encode()
        # Stable across retries of this node, so the receiver can drop duplicates.
        message_id = f"msg_{context.node_execution_id}"
        headers = {**input.headers, "content-type": "application/json"}
        if input.secret:
            timestamp = int(time.time())
            headers["webhook-id"] = message_id
            headers["webhook-timestamp"] = str(timestamp)
            headers["webhook-signature"] = sign(input.secret, message_id, timestamp, body)
        response, reply = await fetch(
            context.config, "POST", input.url, headers=headers, content=body
        )
        status = response.status_code
        if status >= 400:
            error = RetryableBlockError if status >= 500 or status in (408, 429) else BlockError
            raise error(f"the webhook answered {status}: {reply[:300].decode('utf-8', 'replace')}")
        yield "status", status
        yield "response", decode_body(response, reply)
