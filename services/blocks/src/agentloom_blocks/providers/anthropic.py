"""Anthropic's Messages API over plain HTTP."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from agentloom_blocks.providers.base import ChatRequest, ChatResult, ToolCall, post_json
from agentloom_blocks.sdk import BlockError

API_VERSION = "2023-06-01"
# The Messages API requires max_tokens; this is what a request without one asks for.
DEFAULT_MAX_TOKENS = 4096


async def chat(
    request: ChatRequest, *, base_url: str, api_key: str, timeout_s: float
) -> ChatResult:
    body: dict[str, Any] = {
        "model": request.model,
        "messages": _messages(request.messages),
        "max_tokens": request.max_tokens or DEFAULT_MAX_TOKENS,
    }
    if request.system:
        body["system"] = request.system
    if request.temperature is not None:
        body["temperature"] = min(request.temperature, 1.0)  # Anthropic's range is 0..1
    if request.tools:
        body["tools"] = [
            {
                "name": tool.name,
                "description": tool.description,
                "input_schema": dict(tool.parameters),
            }
            for tool in request.tools
        ]
    url = f"{base_url.rstrip('/')}/v1/messages"
    headers = {"x-api-key": api_key, "anthropic-version": API_VERSION}
    message = await post_json(url, body, headers, timeout_s=timeout_s, secret=api_key)
    content = message.get("content")
    if not isinstance(content, list):
        raise BlockError("the LLM provider's answer has no content")
    parts = [p for p in content if isinstance(p, dict)]
    texts = [p["text"] for p in parts if p.get("type", "text") == "text" and "text" in p]
    calls = tuple(_tool_call(p) for p in parts if p.get("type") == "tool_use")
    if not calls and not any(isinstance(t, str) for t in texts):
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
    return ChatResult("".join(t for t in texts if isinstance(t, str)), counts, calls)


def _messages(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Provider-neutral messages (see ChatRequest) as Messages API turns: tool calls are
    `tool_use` blocks of the assistant; their results `tool_result` blocks of one user turn."""
    turns: list[dict[str, Any]] = []
    for message in messages:
        role = message["role"]
        if role == "tool":
            result = {
                "type": "tool_result",
                "tool_use_id": message["tool_call_id"],
                "content": message["content"],
            }
            if turns and turns[-1]["role"] == "user" and isinstance(turns[-1]["content"], list):
                turns[-1]["content"].append(result)
            else:
                turns.append({"role": "user", "content": [result]})
        elif role == "assistant" and message.get("tool_calls"):
            blocks: list[dict[str, Any]] = []
            if message.get("content"):
                blocks.append({"type": "text", "text": message["content"]})
            blocks.extend(
                {
                    "type": "tool_use",
                    "id": call["id"],
                    "name": call["name"],
                    "input": call.get("arguments") or {},
                }
                for call in message["tool_calls"]
            )
            turns.append({"role": "assistant", "content": blocks})
        else:
            turns.append({"role": role, "content": message["content"]})
    return turns


def _tool_call(part: Mapping[str, Any]) -> ToolCall:
    name = part.get("name")
    if not isinstance(name, str):
        raise BlockError("the LLM provider's answer has a tool call without a name")
    arguments = part.get("input")
    if isinstance(arguments, str):  # not what the API sends, but seen from compatible servers
        try:
            arguments = json.loads(arguments)
        except ValueError:
            arguments = None
    if not isinstance(arguments, dict):
        return ToolCall(str(part.get("id") or ""), name, None, "the input must be a JSON object")
    return ToolCall(str(part.get("id") or ""), name, arguments)
