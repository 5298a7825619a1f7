"""A small Anthropic Messages API server for tests: real HTTP, deterministic answers.

`POST /v1/messages` with `x-api-key` and `anthropic-version` headers, as the real API wants.
The answer is "summary: " and the first 12 words of the last user message; token counts are
word counts. Same triggers as the fake OpenAI server, in the last user message:
  [[fail-429]]                 answer that status with an Anthropic error body
                               (429 rate_limit_error with retry-after, 529 overloaded_error...)
  [[slow:2.5]]                 wait that many seconds first
  [[reply]]A[[or]]B[[/reply]]  answer A, then B on the next turn (by the number of assistant
                               messages in the conversation), for structured-output retries
  [[tool:NAME {"arg": 1}]]     with `tools` in the request: answer `tool_use` blocks, then
  [[tool-loop]]                "tool results: ..." after the results (as the fake OpenAI does)
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from agentloom_devkit.fake_openai import SUMMARY_WORDS, scripted_reply, scripted_tool_calls
from agentloom_devkit.servers import ThreadedServer

_FAIL_PREFIX = "[[fail-"
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


class FakeAnthropic(ThreadedServer):
    """The fake Anthropic API in a background thread; `base_url` is the API root."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._lock = threading.Lock()
        self._requests: list[dict[str, Any]] = []
        app = Starlette(routes=[Route("/v1/messages", self._messages, methods=["POST"])])
        super().__init__(app, host=host, port=port, name="fake-anthropic")

    @property
    def base_url(self) -> str:
        return self.url

    def requests(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._requests)

    def clear_requests(self) -> None:
        with self._lock:
            self._requests.clear()

    async def _messages(self, request: Request) -> JSONResponse:
        api_key = request.headers.get("x-api-key", "")
        if not api_key:
            return _error(401, "x-api-key header is required")
        if not request.headers.get("anthropic-version"):
            return _error(400, "anthropic-version header is required")
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "The request body is not valid JSON.")
        problem = _invalid(body)
        if problem:
            return _error(400, problem)
        with self._lock:
            self._requests.append({"headers": dict(request.headers), "body": body})
        messages: list[dict[str, Any]] = body["messages"]
        prompt = next((_text(m["content"]) for m in reversed(messages) if m["role"] == "user"), "")
        slow = _number_after(prompt, "[[slow:")
        if slow is not None:
            await asyncio.sleep(slow)
        fail = _number_after(prompt, _FAIL_PREFIX)
        if fail is not None:
            status = int(fail)
            if status == 401:
                return _error(401, f"invalid x-api-key: {api_key}")
            return _error(status, f"Simulated failure {status} (asked for by the prompt).")
        turns = sum(1 for m in messages if m["role"] == "assistant")
        reply = scripted_reply([_text(m["content"]) for m in messages], turns)
        text = (
            reply if reply is not None else "summary: " + " ".join(prompt.split()[:SUMMARY_WORDS])
        )
        content: list[dict[str, Any]] = [{"type": "text", "text": text}]
        if body.get("tools"):
            results = _tool_results(messages[-1])
            texts = [_text(m["content"]) for m in messages if m["role"] == "user"]
            calls = [
                {
                    "type": "tool_use",
                    "id": f"toolu_{uuid.uuid4().hex[:12]}",
                    "name": name,
                    "input": json.loads(arguments),
                }
                for name, arguments in scripted_tool_calls(texts, bool(results))
            ]
            if calls:
                content = calls
            elif results and reply is None:
                content = [{"type": "text", "text": "tool results: " + " | ".join(results)}]
        system = body.get("system") or ""
        input_tokens = len(_text(system).split()) + sum(
            len(_text(m["content"]).split()) for m in messages
        )
        return JSONResponse(
            {
                "id": f"msg_{uuid.uuid4().hex}",
                "type": "message",
                "role": "assistant",
                "model": body["model"],
                "content": content,
                "stop_reason": "tool_use" if content[0]["type"] == "tool_use" else "end_turn",
                "stop_sequence": None,
                "usage": {
                    "input_tokens": input_tokens,
                    "output_tokens": sum(len(json.dumps(part).split()) for part in content)
                    if content[0]["type"] == "tool_use"
                    else len(_text(content).split()),
                },
            }
        )


def _tool_results(message: dict[str, Any]) -> list[str]:
    """The tool results a user message carries (tool_result blocks), as text."""
    if message["role"] != "user" or not isinstance(message["content"], list):
        return []
    return [
        str(part.get("content", ""))
        for part in message["content"]
        if isinstance(part, dict) and part.get("type") == "tool_result"
    ]


def _invalid(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "model: Field required"
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or max_tokens < 1:
        return "max_tokens: Field required (a positive integer)"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "messages: at least one message is required"
    for message in messages:
        if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
            return "messages: roles must be 'user' or 'assistant' (system goes in `system`)"
    if messages[0]["role"] != "user":
        return "messages: the first message must use the 'user' role"
    return None


def _number_after(text: str, prefix: str) -> float | None:
    start = text.find(prefix)
    if start < 0:
        return None
    end = text.find("]]", start)
    try:
        return float(text[start + len(prefix) : end])
    except ValueError:
        return None


def _text(content: Any) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(p.get("text", "")) for p in content if isinstance(p, dict))
    return ""


def _error(status: int, message: str) -> JSONResponse:
    kind = _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    headers = {"retry-after": "1"} if status == 429 else None
    return JSONResponse(
        {"type": "error", "error": {"type": kind, "message": message}},
        status_code=status,
        headers=headers,
    )
