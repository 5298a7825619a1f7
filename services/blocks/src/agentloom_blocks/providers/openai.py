"""OpenAI and any OpenAI-compatible endpoint (Ollama's /v1 included): chat completions."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from agentloom_blocks.providers.base import ChatRequest, ChatResult, post_json
from agentloom_blocks.sdk import BlockError

_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


async def chat(
    request: ChatRequest, *, base_url: str, api_key: str, timeout_s: float
) -> ChatResult:
    messages: list[dict[str, str]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    messages.extend(request.messages)
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    url = f"{base_url.rstrip('/')}/chat/completions"
    headers = {"Authorization": f"Bearer {api_key}"}
    completion = await post_json(url, body, headers, timeout_s=timeout_s, secret=api_key)
    usage = completion.get("usage")
    counts = {}
    if isinstance(usage, dict):
        counts = {key: usage[key] for key in _USAGE_KEYS if isinstance(usage.get(key), int)}
    return ChatResult(_response_text(completion), counts)


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
