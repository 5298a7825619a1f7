"""Pure ASGI middleware: the request id on every answer, a last-resort 500 problem, and the
request limits (body size, JSON nesting) enforced before any handler sees the body."""

from __future__ import annotations

import asyncio
import logging
import re
import uuid
from itertools import accumulate

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from agentloom_common.logging import request_id_var
from agentloom_gateway.errors import ApiProblem, problem_response

log = logging.getLogger(__name__)

REQUEST_ID_HEADER = "X-Request-ID"
# An oversized body up to this many times the limit is read and dropped before the 413.
_DRAIN_FACTOR = 4
_DRAIN_TIMEOUT_S = 5.0
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,127}$")


def request_id_from(value: str | None) -> str:
    """The caller's request id when it is sane (short, plain characters), else a new one."""
    if value and _SANE_REQUEST_ID.match(value):
        return value
    return uuid.uuid4().hex


SERVER_SEND_KEY = "agentloom.server_send"


class RequestContextMiddleware:
    """Outermost: binds the request id for logs and downstream calls, echoes it on every
    answer, and turns any unhandled exception into a generic 500 problem."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            # The server's own `send`, before the framework wraps it: the live-events relay
            # reaches the connection's transport through it (routes/live.py).
            scope[SERVER_SEND_KEY] = send
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(Headers(scope=scope).get(REQUEST_ID_HEADER))
        token = request_id_var.set(request_id)
        started = False

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                MutableHeaders(scope=message)[REQUEST_ID_HEADER] = request_id
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        except Exception:
            log.exception("unhandled error serving %s %s", scope["method"], scope["path"])
            if started:
                raise
            response = problem_response(ApiProblem(500, "INTERNAL", "internal error"))
            await response(scope, receive, send_with_id)
        finally:
            request_id_var.reset(token)


# A JSON string (escapes included), removed before counting brackets; linear, no backtracking.
_JSON_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_DEPTH_STEP = {ord("["): 1, ord("{"): 1, ord("]"): -1, ord("}"): -1}
_NOT_BRACKET = bytes(b for b in range(256) if b not in _DEPTH_STEP)


def json_depth(body: bytes) -> int:
    """The deepest nesting of arrays/objects in a JSON document (0 for a scalar)."""
    brackets = _JSON_STRING.sub(b"", body).translate(None, _NOT_BRACKET)
    return max(accumulate(map(_DEPTH_STEP.__getitem__, brackets)), default=0)


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "").split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and "+json" in media)


class RequestLimitsMiddleware:
    """Reads the whole body (at most `max_body_bytes`) before the app runs: larger bodies get
    413 whether announced by Content-Length or streamed; JSON deeper than `max_json_depth`
    gets 400. Handlers then see a body that is small and shallow enough to parse safely."""

    def __init__(self, app: ASGIApp, *, max_body_bytes: int, max_json_depth: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.max_json_depth = max_json_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        declared = headers.get("content-length")
        if declared is not None and not declared.isdigit():
            await self._reject(scope, receive, send, ApiProblem(400, "BAD_REQUEST", "bad length"))
            return
        if declared is not None and int(declared) > self.max_body_bytes:
            if int(declared) <= _DRAIN_FACTOR * self.max_body_bytes:
                await self._drain(receive, _DRAIN_FACTOR * self.max_body_bytes)
            await self._reject(scope, receive, send, self._too_large())
            return
        chunks: list[bytes] = []
        size = 0
        more = True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                if message.get("more_body", False):
                    await self._drain(receive, (_DRAIN_FACTOR - 1) * self.max_body_bytes)
                await self._reject(scope, receive, send, self._too_large())
                return
            chunks.append(chunk)
            more = message.get("more_body", False)
        body = b"".join(chunks)
        if (
            len(body) > 2 * self.max_json_depth
            and _is_json(headers.get("content-type"))
            and json_depth(body) > self.max_json_depth
        ):
            detail = f"JSON nested deeper than {self.max_json_depth} levels"
            await self._reject(scope, receive, send, ApiProblem(400, "JSON_TOO_DEEP", detail))
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _drain(receive: Receive, budget: int) -> None:
        """Read and drop the rest of a moderately oversized body (at most `budget` bytes, for
        at most a few seconds), so the client has sent it all and reads the 413 instead of
        a connection reset. Larger bodies are cut off unread."""
        try:
            async with asyncio.timeout(_DRAIN_TIMEOUT_S):
                while budget > 0:
                    message = await receive()
                    if message["type"] == "http.disconnect":
                        return
                    budget -= len(message.get("body", b""))
                    if not message.get("more_body", False):
                        return
        except TimeoutError:
            return

    def _too_large(self) -> ApiProblem:
        # The rest of the body is never read: close the connection rather than drain it.
        detail = f"the body exceeds {self.max_body_bytes} bytes"
        return ApiProblem(413, "PAYLOAD_TOO_LARGE", detail, {"Connection": "close"})

    @staticmethod
    async def _reject(scope: Scope, receive: Receive, send: Send, problem: ApiProblem) -> None:
        await problem_response(problem)(scope, receive, send)
