"""A small OpenAI-compatible server for tests and local runs: real HTTP, deterministic answers.

It speaks the chat-completions protocol (`POST /v1/chat/completions`, also without `/v1`):
the answer is "summary: " followed by the first 12 words of the last user message, and token
counts are word counts. It wants `Authorization: Bearer <anything>` and records every
completion request it gets (`GET /_requests`, `DELETE /_requests` to forget them; both also
under `/v1`).

Triggers in the last user message, for failure tests:
  [[fail-500]]   answer that status (any 4xx/5xx code) with an OpenAI-style error body;
                 [[fail-401]] quotes the API key back in the message, as providers do
  [[slow:2.5]]   wait that many seconds before answering
  [[reply]]A[[or]]B[[/reply]]   (in any message) answer exactly A, then B on the next turn
                 (chosen by the number of assistant messages so far; the last one repeats),
                 e.g. an invalid then a valid JSON answer for structured-output retries
  [[tool:NAME {"arg": 1}]]   (in a user message, with `tools` in the request) call tool NAME
                 with those arguments (several triggers: parallel calls) while the last
                 message is not a tool result; after the results, answer
                 "tool results: " and the results joined by " | "
  [[tool-loop]]  call the tools again after every result (to test round limits)

In a test::

    with FakeOpenAI() as fake:          # or: base_url = fake.start() ... fake.stop()
        config = PlatformConfig(openai_base_url=fake.base_url, openai_api_key="test-key")
        ...
        assert fake.requests()[-1]["body"]["model"] == "gpt-4o-mini"

From a shell: `python -m agentloom_devkit.fake_openai --host 127.0.0.1 --port 8090`.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import re
import socket
import threading
import time
import uuid
from collections.abc import Callable
from types import TracebackType
from typing import Any

import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse

SUMMARY_WORDS = 12
MODELS = ("gpt-4o-mini", "gpt-4o", "gpt-4")
_FAIL = re.compile(r"\[\[fail-([45]\d\d)\]\]")
_SLOW = re.compile(r"\[\[slow:(\d+(?:\.\d+)?)\]\]")
_REPLY = re.compile(r"\[\[reply\]\](.*?)\[\[/reply\]\]", re.DOTALL)
_TOOL = re.compile(r"\[\[tool:([\w.-]+)\s*(\{.*?\})?\]\]", re.DOTALL)
_TOOL_LOOP = "[[tool-loop]]"


def scripted_tool_calls(texts: list[str], after_results: bool) -> list[tuple[str, str]]:
    """The (tool name, JSON arguments) calls the [[tool:...]] triggers in `texts` ask for now:
    none once tool results came back, unless [[tool-loop]] is there too."""
    joined = "\n".join(texts)
    if after_results and _TOOL_LOOP not in joined:
        return []
    return [(m.group(1), m.group(2) or "{}") for m in _TOOL.finditer(joined)]


def scripted_reply(texts: list[str], turn: int) -> str | None:
    """The answer a [[reply]]...[[/reply]] trigger in `texts` asks for at this turn, if any."""
    for text in texts:
        match = _REPLY.search(text)
        if match:
            answers = match.group(1).split("[[or]]")
            return answers[min(turn, len(answers) - 1)]
    return None


class RequestLog:
    """The completion requests received, shared between the server thread and the test."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._entries: list[dict[str, Any]] = []

    def add(self, entry: dict[str, Any]) -> None:
        with self._lock:
            self._entries.append(entry)

    def snapshot(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self._entries)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()


def create_app(log: RequestLog | None = None) -> FastAPI:
    """The fake provider as an ASGI app; `log` receives every completion request."""
    requests_log = log if log is not None else RequestLog()
    app = FastAPI(title="Fake OpenAI", openapi_url=None, docs_url=None, redoc_url=None)

    async def chat_completions(request: Request) -> JSONResponse:
        if not _bearer_token(request):
            return _error(
                401,
                "You didn't provide an API key.",
                "invalid_request_error",
                "invalid_api_key",
            )
        try:
            body = await request.json()
        except ValueError:
            return _error(400, "The request body is not valid JSON.", "invalid_request_error")
        problem = _invalid_request(body)
        if problem:
            return _error(400, problem, "invalid_request_error")
        requests_log.add(
            {
                "path": request.url.path,
                "body": body,
                "received_at": time.time(),
                # Which key was used, without keeping the key: tests compare hashes.
                "api_key_sha256": hashlib.sha256(_bearer_token(request).encode()).hexdigest(),
            }
        )
        return await _answer(body, _bearer_token(request))

    app.add_api_route("/v1/chat/completions", chat_completions, methods=["POST"])
    app.add_api_route("/chat/completions", chat_completions, methods=["POST"])

    async def list_models() -> dict[str, Any]:
        data = [{"id": m, "object": "model", "created": 0, "owned_by": "fake"} for m in MODELS]
        return {"object": "list", "data": data}

    app.add_api_route("/v1/models", list_models, methods=["GET"])

    async def recorded_requests() -> list[dict[str, Any]]:
        return requests_log.snapshot()

    async def forget_requests() -> None:
        requests_log.clear()

    # At the root and under /v1, so that a client built on the base URL finds them too.
    for prefix in ("", "/v1"):
        app.add_api_route(f"{prefix}/_requests", recorded_requests, methods=["GET"])
        app.add_api_route(
            f"{prefix}/_requests", forget_requests, methods=["DELETE"], status_code=204
        )

    return app


async def _answer(body: dict[str, Any], api_key: str) -> JSONResponse:
    messages: list[dict[str, Any]] = body["messages"]
    prompt = next(
        (_text(m.get("content")) for m in reversed(messages) if m.get("role") == "user"), ""
    )
    slow = _SLOW.search(prompt)
    if slow:
        await asyncio.sleep(float(slow.group(1)))
    fail = _FAIL.search(prompt)
    if fail:
        return _simulated_failure(int(fail.group(1)), api_key)

    turns = sum(1 for m in messages if m.get("role") == "assistant")
    reply = scripted_reply([_text(m.get("content")) for m in messages], turns)
    content = reply if reply is not None else "summary: " + " ".join(prompt.split()[:SUMMARY_WORDS])
    prompt_tokens = sum(len(_text(m.get("content")).split()) for m in messages)
    tool_calls: list[dict[str, Any]] = []
    if body.get("tools"):
        after_results = messages[-1].get("role") == "tool"
        users = [_text(m.get("content")) for m in messages if m.get("role") == "user"]
        for name, arguments in scripted_tool_calls(users, after_results):
            tool_calls.append(
                {
                    "id": f"call_{uuid.uuid4().hex[:12]}",
                    "type": "function",
                    "function": {"name": name, "arguments": arguments},
                }
            )
        if after_results and not tool_calls and reply is None:
            results = reversed(_trailing_tools(messages))
            content = "tool results: " + " | ".join(_text(m.get("content")) for m in results)
    completion_tokens = len(content.split()) if not tool_calls else 10 * len(tool_calls)
    message: dict[str, Any] = {"role": "assistant", "content": content, "refusal": None}
    if tool_calls:
        message = {"role": "assistant", "content": None, "tool_calls": tool_calls, "refusal": None}
    return JSONResponse(
        {
            "id": f"chatcmpl-{uuid.uuid4().hex}",
            "object": "chat.completion",
            "created": int(time.time()),
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": "tool_calls" if tool_calls else "stop",
                }
            ],
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "system_fingerprint": "fp_fake",
        }
    )


def _trailing_tools(messages: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The tool results after the last assistant message (the round just answered)."""
    trailing: list[dict[str, Any]] = []
    for message in reversed(messages):
        if message.get("role") != "tool":
            break
        trailing.append(message)
    return trailing


def _simulated_failure(status: int, api_key: str) -> JSONResponse:
    if status == 401:
        # Like a real provider, quote the key back: clients must not pass that message on as is.
        message = f"Simulated failure 401: Incorrect API key provided: {api_key}."
        return _error(status, message, "invalid_request_error", "invalid_api_key")
    kind = "server_error" if status >= 500 else "invalid_request_error"
    return _error(status, f"Simulated failure {status} (asked for by the prompt).", kind)


def _bearer_token(request: Request) -> str:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return token.strip() if scheme.lower() == "bearer" else ""


def _invalid_request(body: Any) -> str | None:
    if not isinstance(body, dict):
        return "The request body must be a JSON object."
    if not isinstance(body.get("model"), str) or not body["model"]:
        return "you must provide a model parameter"
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        return "'messages' must be a non-empty array"
    if not all(isinstance(m, dict) and isinstance(m.get("role"), str) for m in messages):
        return "each message must be an object with a 'role'"
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and (not isinstance(max_tokens, int) or max_tokens < 1):
        return "max_tokens must be a positive integer"
    return None


def _text(content: Any) -> str:
    """A message's text: a string, or the text parts of a list of content parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        return " ".join(str(part.get("text", "")) for part in content if isinstance(part, dict))
    return ""


def _error(status: int, message: str, kind: str, code: str | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": {"message": message, "type": kind, "param": None, "code": code}},
        status_code=status,
    )


class FakeOpenAI:
    """The fake provider served by uvicorn in a background thread."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._port = port
        self._log = RequestLog()
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._base_url: str | None = None

    @property
    def base_url(self) -> str:
        """The URL to configure as the OpenAI base URL, e.g. http://127.0.0.1:PORT/v1."""
        if self._base_url is None:
            raise RuntimeError("the fake OpenAI server is not running")
        return self._base_url

    def start(self, timeout_s: float = 10.0) -> str:
        """Start serving (port 0 picks a free port) and return the base URL."""
        if self._server is not None:
            return self.base_url
        # Bind here, so the port is known (and taken) before the thread starts.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self._host, self._port))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(self._log),
            lifespan="off",
            ws="none",
            http="h11",
            loop="asyncio",
            log_level="warning",
            access_log=False,
            # Do not wait long for a [[slow:...]] answer nobody is waiting for any more.
            timeout_graceful_shutdown=1,
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="fake-openai", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + timeout_s
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                server.should_exit = True
                sock.close()
                raise RuntimeError("the fake OpenAI server did not start")
            time.sleep(0.01)
        self._server, self._thread = server, thread
        self._base_url = f"http://{self._host}:{port}/v1"
        return self._base_url

    def stop(self, timeout_s: float = 10.0) -> None:
        """Stop serving and wait for the thread; safe to call twice."""
        server, thread = self._server, self._thread
        self._server = self._thread = self._base_url = None
        if server is None or thread is None:
            return
        server.should_exit = True
        thread.join(timeout_s)

    def requests(self) -> list[dict[str, Any]]:
        """The completion requests received so far: {"path", "body", "received_at"}."""
        return self._log.snapshot()

    def clear_requests(self) -> None:
        self._log.clear()

    def __enter__(self) -> FakeOpenAI:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def run_in_thread(port: int = 0, host: str = "127.0.0.1") -> tuple[str, Callable[[], None]]:
    """Start a fake in a background thread; return its base URL and the function stopping it."""
    fake = FakeOpenAI(host=host, port=port)
    return fake.start(), fake.stop


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="A fake OpenAI-compatible server for tests")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8090)
    args = parser.parse_args(argv)
    print(f"fake OpenAI: base URL http://{args.host}:{args.port}/v1", flush=True)
    uvicorn.run(create_app(), host=args.host, port=args.port, log_level="info")


if __name__ == "__main__":
    main()
