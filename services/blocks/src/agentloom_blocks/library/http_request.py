"""Sends an HTTP request to a URL on the internet (never to the platform's own network)."""

from __future__ import annotations

import enum
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
from pydantic import BaseModel, Field

from agentloom_blocks.net import fetch
from agentloom_blocks.sdk import (
    EXAMPLE_SERVER_URL,
    Block,
    BlockContext,
    BlockCosts,
    BlockError,
    BlockExample,
)

MAX_TIMEOUT_S = 120.0


class HttpMethod(enum.StrEnum):
    GET = "GET"
    POST = "POST"
    PUT = "PUT"
    PATCH = "PATCH"
    DELETE = "DELETE"
    HEAD = "HEAD"
    OPTIONS = "OPTIONS"


def decode_body(response: httpx.Response, body: bytes) -> Any:
    """JSON bodies as data, anything else as text."""
    text = body.decode(response.encoding or "utf-8", "replace")
    if "json" in response.headers.get("content-type", ""):
        try:
            return json.loads(text)
        except ValueError:
            return text
    return text


class HttpRequestBlock(Block):
    id = "http_request_block"
    name = "HTTP request"
    description = (
        "Sends an HTTP request and yields the status, the headers, then the body (JSON as "
        "data, else text) on `response` for 1xx-3xx, `client_error` for 4xx or `server_error` "
        "for 5xx. Private, loopback and cloud-metadata addresses are refused; responses are "
        "capped in size and time."
    )
    categories = ("web",)
    cost_per_run = 1
    costs = BlockCosts(per_kb_out=0)

    class Input(BaseModel):
        url: str = Field(title="URL", description="The http:// or https:// URL.")
        method: HttpMethod = Field(
            default=HttpMethod.GET, title="Method", description="The HTTP method."
        )
        headers: dict[str, str] = Field(
            default_factory=dict,
            title="Headers",
            description="Request headers (e.g. Authorization).",
            json_schema_extra={"advanced": True},
        )
        query: dict[str, str] = Field(
            default_factory=dict, title="Query", description="Query parameters to add."
        )
        json_body: Any = Field(
            default=None, title="JSON body", description="A value sent as a JSON body."
        )
        form_body: dict[str, str] | None = Field(
            default=None, title="Form body", description="Fields sent form-encoded."
        )
        text_body: str | None = Field(
            default=None, title="Text body", description="Raw text sent as the body."
        )
        timeout_s: float = Field(
            default=30.0,
            gt=0,
            le=MAX_TIMEOUT_S,
            title="Timeout (s)",
            description="How long to wait for the whole response.",
            json_schema_extra={"advanced": True},
        )
        follow_redirects: bool = Field(
            default=True,
            title="Follow redirects",
            description="Follow up to 5 redirects (each target checked again).",
            json_schema_extra={"advanced": True},
        )

    class Output(BaseModel):
        status: int = Field(title="Status", description="The HTTP status code.")
        headers: dict[str, str] = Field(title="Headers", description="The response headers.")
        response: Any = Field(title="Response", description="The body of a 1xx-3xx answer.")
        client_error: Any = Field(title="Client error", description="The body of a 4xx answer.")
        server_error: Any = Field(title="Server error", description="The body of a 5xx answer.")

    examples = (
        BlockExample(
            input={"url": f"{EXAMPLE_SERVER_URL}/json"},
            outputs=[
                ("status", 200),
                ("headers", {"content-length": "47", "content-type": "application/json"}),
                ("response", {"name": "agentloom", "tags": ["a", "b"], "count": 2}),
            ],
        ),
        BlockExample(
            input={"url": f"{EXAMPLE_SERVER_URL}/status/404", "method": "DELETE"},
            outputs=[
                ("status", 404),
                ("headers", {"content-length": "14", "content-type": "application/json"}),
                ("client_error", {"status": 404}),
            ],
        ),
        BlockExample(
            input={"url": "http://169.254.169.254/latest/meta-data/"},
            outputs=[
                (
                    "error",
                    "refused to connect to '169.254.169.254': it resolves to a link-local "
                    "(metadata) address (169.254.169.254)",
                )
            ],
            description="Cloud metadata and private addresses are refused.",
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        bodies = [b for b in (input.json_body, input.form_body, input.text_body) if b is not None]
        if len(bodies) > 1:
            raise BlockError("give at most one of json_body, form_body and text_body")
        request: dict[str, Any] = {"headers": input.headers, "params": input.query}
        if input.json_body is not None:
            request["json"] = input.json_body
        elif input.form_body is not None:
            request["data"] = input.form_body
        elif input.text_body is not None:
            request["content"] = input.text_body.encode()
        response, body = await fetch(
            context.config,
            input.method.value,
            input.url,
            timeout_s=input.timeout_s,
            follow_redirects=input.follow_redirects,
            **request,
        )
        yield "status", response.status_code
        yield "headers", _headers(response)
        pin = "server_error" if response.status_code >= 500 else "client_error"
        if response.status_code < 400:
            pin = "response"
        yield pin, decode_body(response, body)


def _headers(response: httpx.Response) -> dict[str, str]:
    """Response headers, lower-cased; `date` and `server` dropped (they vary, say nothing)."""
    skipped = {"date", "server"}
    return {k.lower(): v for k, v in response.headers.items() if k.lower() not in skipped}
