"""Calls a large language model over the OpenAI chat-completions protocol."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any, NoReturn

import httpx
from pydantic import BaseModel, ConfigDict, Field

from agentloom_blocks.sdk import (
    Block,
    BlockContext,
    BlockError,
    BlockExample,
    PlatformConfig,
    RetryableBlockError,
)

# `{name}` or `{{ name }}`; anything else between braces (JSON, code) is plain text.
_PLACEHOLDER = re.compile(r"\{\{\s*(?P<jinja>[^\W\d]\w*)\s*\}\}|\{(?P<plain>[^\W\d]\w*)\}")
# Statuses worth another try: timeouts, conflicts, rate limits, provider-side failures.
_RETRYABLE_STATUSES = frozenset({408, 409, 429})
_MAX_ERROR_CHARS = 500


def format_prompt(text: str, values: Mapping[str, Any]) -> str:
    """Replace `{name}` and `{{ name }}` for the names in `values`; leave every other brace.

    One pass: text inserted from a value is never itself searched for placeholders.
    Strings go in as they are, None as nothing, lists and dicts as JSON.
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group("jinja") or match.group("plain")
        return _as_text(values[name]) if name in values else match.group(0)

    return _PLACEHOLDER.sub(replace, text)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


class LlmCallBlock(Block):
    id = "llm_call_block"
    name = "LLM call"
    description = (
        "Sends a prompt to a large language model (OpenAI-compatible chat completions) and "
        "yields its answer on `response` and the token counts on `usage`. Placeholders such "
        "as {text} in the prompt and system prompt are filled from `prompt_values` and from "
        "any extra input pin you wire (an extra pin wins); other braces are left as written."
    )
    categories = ("ai", "text")
    cost_per_run = 1
    accepts_extra_inputs = True

    class Input(BaseModel):
        model_config = ConfigDict(extra="allow")

        prompt: str = Field(
            title="Prompt",
            description="What to ask; {name} inserts the value of `name`.",
        )
        model: str = Field(default="gpt-4o-mini", title="Model", description="The model to call.")
        sys_prompt: str = Field(
            default="",
            title="System prompt",
            description="Instructions sent as the system message (none when empty).",
        )
        max_tokens: int | None = Field(
            default=None,
            ge=1,
            title="Max tokens",
            description="The longest answer to generate, in tokens (the model's limit if empty).",
        )
        temperature: float | None = Field(
            default=None,
            ge=0,
            le=2,
            title="Temperature",
            description="Randomness, 0 to 2 (the model's default if empty).",
        )
        prompt_values: dict[str, Any] = Field(
            default_factory=dict,
            title="Prompt values",
            description="Values for the placeholders in the prompt, by name.",
        )

    class Output(BaseModel):
        response: str = Field(title="Response", description="The model's answer.")
        usage: dict[str, int] = Field(
            title="Usage",
            description="Tokens used: prompt_tokens, completion_tokens, total_tokens.",
        )

    examples = (
        BlockExample(
            input={
                "model": "gpt-4",
                "prompt": "Summarize the following text: {input_text}",
                "max_tokens": 150,
                "input_text": "Bees dance to tell other bees where the flowers are.",
            },
            outputs=[
                (
                    "response",
                    "summary: Summarize the following text: Bees dance to tell other bees "
                    "where the",
                ),
                ("usage", {"prompt_tokens": 14, "completion_tokens": 13, "total_tokens": 27}),
            ],
            description="An extra pin fills {input_text} (answers as from the test server).",
        ),
        BlockExample(
            input={
                "prompt": 'Answer as {"topic": ...} about {topic}.',
                "sys_prompt": "Be terse.",
                "prompt_values": {"topic": "tea"},
                "temperature": 0,
            },
            outputs=[
                ("response", 'summary: Answer as {"topic": ...} about tea.'),
                ("usage", {"prompt_tokens": 8, "completion_tokens": 7, "total_tokens": 15}),
            ],
            description="Braces that are not placeholders stay as written.",
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        values = {**input.prompt_values, **(input.model_extra or {})}
        messages = []
        if input.sys_prompt:
            messages.append({"role": "system", "content": format_prompt(input.sys_prompt, values)})
        messages.append({"role": "user", "content": format_prompt(input.prompt, values)})
        body: dict[str, Any] = {"model": input.model, "messages": messages}
        if input.max_tokens is not None:
            body["max_tokens"] = input.max_tokens
        if input.temperature is not None:
            body["temperature"] = input.temperature

        completion = await _chat_completion(context.config, body)
        yield "response", _response_text(completion)
        usage = completion.get("usage")
        if isinstance(usage, dict):
            keys = ("prompt_tokens", "completion_tokens", "total_tokens")
            counts = {key: usage[key] for key in keys if isinstance(usage.get(key), int)}
            if counts:
                yield "usage", counts


async def _chat_completion(config: PlatformConfig, body: dict[str, Any]) -> dict[str, Any]:
    """POST the request; map every failure to a BlockError that never shows the API key."""
    api_key = config.openai_api_key
    if not api_key:
        raise BlockError("no OpenAI API key is configured for LLM calls")
    url = f"{config.openai_base_url.rstrip('/')}/chat/completions"
    # `from None` everywhere below: httpx exceptions carry the request, Authorization included.
    try:
        async with httpx.AsyncClient(timeout=config.http_timeout_s) as client:
            response = await client.post(
                url, json=body, headers={"Authorization": f"Bearer {api_key}"}
            )
    except httpx.TimeoutException:
        _fail(
            RetryableBlockError,
            f"the LLM provider did not answer within {config.http_timeout_s:g}s",
            api_key,
        )
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        _fail(BlockError, f"bad LLM provider URL {url!r}: {exc}", api_key)
    except httpx.TransportError as exc:
        _fail(RetryableBlockError, f"could not reach the LLM provider: {exc!r}", api_key)

    status = response.status_code
    if status >= 400:
        retryable = status in _RETRYABLE_STATUSES or status >= 500
        message = f"the LLM provider answered {status}: {_provider_error(response)}"
        _fail(RetryableBlockError if retryable else BlockError, message, api_key)
    try:
        completion = response.json()
    except ValueError:
        completion = None
    if not isinstance(completion, dict):
        _fail(BlockError, "the LLM provider's answer is not a JSON object", api_key)
    return completion


def _response_text(completion: Mapping[str, Any]) -> str:
    try:
        message = completion["choices"][0]["message"]
    except (KeyError, IndexError, TypeError):
        raise BlockError("the LLM provider's answer has no choices[0].message") from None
    content = message.get("content") if isinstance(message, dict) else None
    if isinstance(content, str):
        return content
    refusal = message.get("refusal") if isinstance(message, dict) else None
    if refusal:
        raise BlockError(f"the model refused: {refusal}")
    raise BlockError("the LLM provider's answer has no text content")


def _provider_error(response: httpx.Response) -> str:
    """The provider's own explanation: OpenAI's {"error": {"message": ...}}, else the body."""
    try:
        payload = response.json()
    except ValueError:
        payload = None
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict) and error.get("message"):
            return str(error["message"])[:_MAX_ERROR_CHARS]
        if isinstance(error, str) and error:
            return error[:_MAX_ERROR_CHARS]
    return response.text[:_MAX_ERROR_CHARS] or response.reason_phrase


def _fail(error: type[BlockError], message: str, api_key: str) -> NoReturn:
    # Providers echo keys back ("Incorrect API key provided: sk-..."): never pass one on.
    raise error(message.replace(api_key, "***")) from None
