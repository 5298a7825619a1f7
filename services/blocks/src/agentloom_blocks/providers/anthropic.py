"""Anthropic's Messages API over plain HTTP."""

from __future__ import annotations

from typing import Any

from agentloom_blocks.providers.base import ChatRequest, ChatResult, post_json
from agentloom_blocks.sdk import BlockError

API_VERSION = "2023-06-01"
# The Messages API requires max_tokens; this is what a request without one asks for.
DEFAULT_MAX_TOKENS = 4096


async def chat(
    request: ChatRequest, *, base_url: str, api_key: str, timeout_s: float
) -> ChatResult:
    body: dict[str, Any] = {
        "model": request.model,
        "messages": request.messages,
        "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
    }
    if request.system:
        body["system"] = request.system
    if request.temperature is not None:
        body["temperature"] = min(request.temperature, 1.0)  # Anthropic's range is 0..1
    url = f"{base_url.rstrip('/')}/v1/messages"
    headers = {"x-api-key": api_key, "anthropic-version": API_VERSION}
    message = await post_json(url, body, headers, timeout_s=timeout_s, secret=api_key)
    content = message.get("content")
    if not isinstance(content, list):
        raise BlockError("the LLM provider's answer has no content")
    texts = [p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)]
    if not texts:
        raise BlockError("the LLM provider's answer has no text content")
    usage = message.get("usage")
    counts: dict[str, int] = {}
    if isinstance(usage, dict):
        prompt, completion = usage.get("input_tokens"), usage.get("output_tokens")
        if isinstance(prompt, int) and isinstance(completion, int):
            counts = {
                "prompt_tokens": prompt,
                "completion_tokens": completion,
                "total_tokens": prompt + completion,
            }
    return ChatResult("".join(texts), counts)
