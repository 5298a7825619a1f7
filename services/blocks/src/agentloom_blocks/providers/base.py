"""What every LLM provider shares: the request, the result, and HTTP error mapping."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, NoReturn

import httpx

from agentloom_blocks.sdk import BlockError, RetryableBlockError, Tool

# Statuses worth another try: timeouts, conflicts, rate limits, provider-side failures.
RETRYABLE_STATUSES = frozenset({408, 409, 429})
MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class ToolCall:
    """A call the model asks for. `arguments` is None when the model's arguments were not a
    JSON object (`problem` says why): the call is answered with that error."""

    id: str
    name: str
    arguments: dict[str, Any] | None
    problem: str = ""


@dataclass(frozen=True)
class ChatRequest:
    """A provider-neutral chat. `messages` are, in order:
    {"role": "user", "content": str}
    {"role": "assistant", "content": str, "tool_calls": [ToolCall as dict]} (tool_calls optional)
    {"role": "tool", "tool_call_id": str, "name": str, "content": str} (a call's result)
    """

    model: str
    messages: list[dict[str, Any]]
    system: str = ""
    max_tokens: int | None = None
    temperature: float | None = None
    tools: tuple[Tool, ...] = ()


@dataclass(frozen=True)
class ChatResult:
    text: str
    # prompt_tokens, completion_tokens, total_tokens: whichever the provider reported.
    usage: dict[str, int] = field(default_factory=dict)
    tool_calls: tuple[ToolCall, ...] = ()


async def post_json(
    url: str,
    body: dict[str, Any],
    headers: dict[str, str],
    *,
    timeout_s: float,
    secret: str,
) -> dict[str, Any]:
    """POST to a provider; map every failure to a BlockError that never shows `secret`."""
    # `from None` everywhere below: httpx exceptions carry the request, its headers included.
    try:
        async with httpx.AsyncClient(timeout=timeout_s, trust_env=False) as client:
            response = await client.post(url, json=body, headers=headers)
    except httpx.TimeoutException:
        fail(
            RetryableBlockError,
            f"the LLM provider did not answer within {timeout_s:g}s",
            secret,
        )
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        fail(BlockError, f"bad LLM provider URL {url!r}: {exc}", secret)
    except httpx.TransportError as exc:
        fail(RetryableBlockError, f"could not reach the LLM provider: {exc!r}", secret)

    status = response.status_code
    if status >= 400:
        retryable = status in RETRYABLE_STATUSES or status >= 500
        message = f"the LLM provider answered {status}: {provider_error(response)}"
        fail(RetryableBlockError if retryable else BlockError, message, secret)
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if not isinstance(payload, dict):
        fail(BlockError, "the LLM provider's answer is not a JSON object", secret)
    return payload


def provider_error(response: httpx.Response) -> str:
    """The provider's own explanation ({"error": {"message": ...}}), else the body."""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:MAX_ERROR_CHARS]
        if isinstance(error, str) and error:
            return error[:MAX_ERROR_CHARS]
    return response.text[:MAX_ERROR_CHARS] or response.reason_phrase


def fail(error: type[BlockError], message: str, secret: str) -> NoReturn:
    # Providers echo keys back ("Incorrect API key provided: sk-..."): never pass one on.
    if secret:
        message = message.replace(secret, "***")
    raise error(message) from None


def add_usage(total: dict[str, int], usage: dict[str, int]) -> dict[str, int]:
    """Token counts of several calls, summed key by key (for billing one node)."""
    return {key: total.get(key, 0) + usage.get(key, 0) for key in {*total, *usage}}
