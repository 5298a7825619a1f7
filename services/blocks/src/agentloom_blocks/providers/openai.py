"""OpenAI and any OpenAI-compatible endpoint (Ollama's /v1 included): chat completions."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from agentloom_blocks.providers.base import ChatRequest, ChatResult, ToolCall, post_json
from agentloom_blocks.sdk import BlockError

_USAGE_KEYS = ("prompt_tokens", "completion_tokens", "total_tokens")


async def chat(
    request: ChatRequest, *, base_url: str, api_key: str, timeout_s: float
) -> ChatResult:
    messages: list[dict[str, Any]] = []
    if request.system:
        messages.append({"role": "system", "content": request.system})
    messages.extend(_message(m) for m in request.messages)
    body: dict[str, Any] = {"model": request.model, "messages": messages}
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.tools:
        body["tools"] = [
            {
                "type": "function",
                "function": {
                    "name": tool.name,
                    "description": tool.description,
                    "parameters": dict(tool.parameters),
                },
            }
            for tool in request.tools
        ]
    url = f"{base_url.rstrip('/')}/chat/completions"
    headers = {"Authorization": f"Bearer {api_key}"}
    completion = await post_json(url, body, headers, timeout_s=timeout_s, secret=api_key)
    usage = completion.get("usage")
    counts = {}
    if isinstance(usage, dict):
        counts = {key: usage[key] for key in _USAGE_KEYS if isinstance(usage.get(key), int)}
    message = _choice_message(completion)
    calls = _tool_calls(message)
    return ChatResult(_response_text(message, allow_empty=bool(calls)), counts, calls)


def _message(message: Mapping[str, Any]) -> dict[str, Any]:
    """A provider-neutral message (see ChatRequest) in the chat-completions shape."""
    if message["role"] == "tool":
        return {
            "role": "tool",
            "tool_call_id": message["tool_call_id"],
            "content": message["content"],
        }
    if message["role"] == "assistant" and message.get("tool_calls"):
        return {
            "role": "assistant",
            "content": message.get("content") or None,
            "tool_calls": [
                {
                    "id": call["id"],
                    "type": "function",
                    "function": {
                        "name": call["name"],
                        "arguments": json.dumps(call.get("arguments") or {}),
                    },
                }
                for call in message["tool_calls"]
            ],
        }
    return {"role": message["role"], "content": message["content"]}


def _choice_message(completion: Mapping[str, Any]) -> Mapping[str, Any]:
    try:
        message = completion["choices"][0]["message"]
    except (KeyError, IndexError, TypeError):
        raise BlockError("the LLM provider's answer has no choices[0].message") from None
    if not isinstance(message, dict):
        raise BlockError("the LLM provider's answer has no choices[0].message")
    return message


def _tool_calls(message: Mapping[str, Any]) -> tuple[ToolCall, ...]:
    calls = []
    for index, raw in enumerate(message.get("tool_calls") or ()):
        function = raw.get("function") if isinstance(raw, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise BlockError("the LLM provider's answer has a tool call without a function name")
        call_id = str(raw.get("id") or f"call_{index}")
        arguments, problem = _arguments(function.get("arguments"))
        calls.append(ToolCall(call_id, function["name"], arguments, problem))
    return tuple(calls)


def _arguments(raw: Any) -> tuple[dict[str, Any] | None, str]:
    """The model's arguments (a JSON text, per the protocol) as an object, or why not."""
    if raw is None or raw == "":
        return {}, ""
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError as error:
        return None, f"the arguments are not valid JSON: {error}"
    if not isinstance(value, dict):
        return None, "the arguments must be a JSON object"
    return value, ""


def _response_text(message: Mapping[str, Any], *, allow_empty: bool) -> str:
    content = message.get("content")
    if isinstance(content, str):
        return content
    if allow_empty:
        return ""
    refusal = message.get("refusal")
    if refusal:
        raise BlockError(f"the model refused: {refusal}")
    raise BlockError("the LLM provider's answer has no text content")
