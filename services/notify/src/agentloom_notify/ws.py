"""The WebSocket server: live execution events, in order, resumable.

Clients reach it through the gateway (`/ws`), which authenticates them and forwards the
connection here with the user id and the platform's internal token; nothing else is
accepted. The protocol (JSON text frames; docs/events.md has it in full):

  -> {"type": "subscribe", "graph_exec_id": "...", "last_seq": 41}
  -> {"type": "subscribe", "graph_id": "..."}           (every execution of the graph)
  -> {"type": "unsubscribe", "graph_exec_id" | "graph_id": "..."}
  -> {"type": "ping"}
  <- {"type": "subscribed", ...} / {"type": "unsubscribed", ...} / {"type": "pong"}
  <- {"type": "event", "event": {event_id, type, seq, graph_exec_id, data, ...}}
  <- {"type": "heartbeat", "time": "..."}
  <- {"type": "error", "field": "...", "detail": "..."}

Ordering: per execution, events go out in `seq` order, each once. Live events (Redis) may
arrive late, twice or not at all; they are held until the ones before them are there, and
a gap that does not fill itself is fetched from the executor's replay, which is also where a
reconnecting client's `last_seq` resumes from. A client that does not read is cut off (close
code 4008) once its bounded send queue is full or a send blocks too long: its memory here is
the queue, never more.
"""

from __future__ import annotations

import asyncio
import contextlib
import hmac
import json
import logging
import socket
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import grpc
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from agentloom.executor.v1 import executor_pb2, executor_pb2_grpc
from agentloom_notify.hub import Hub

log = logging.getLogger(__name__)

USER_HEADER = "x-agentloom-user-id"
TOKEN_HEADER = "x-agentloom-internal-token"

CLOSE_SLOW = 4008
CLOSE_UNAUTHORIZED = 4401
# Events fetched per replay call.
REPLAY_PAGE = 500
# A gap in live events is fetched if still open after this long (it usually closes itself).
GAP_GRACE_S = 0.2
# Executions a graph subscription keeps track of before it forgets the ended ones.
MAX_STREAMS = 1000
TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})
# Kernel send buffer of each client connection, set explicitly: left to autotuning it may
# grow to tens of megabytes (net.ipv4.tcp_wmem/rmem), which would hide a stalled client.
SOCKET_BUFFER_BYTES = 262_144


@dataclass(frozen=True)
class WsOptions:
    internal_token: str
    send_queue: int = 1000
    # Bytes waiting in the send queue at most (events carry node inputs and outputs: a
    # thousand of them may be large).
    send_queue_bytes: int = 8_000_000
    send_timeout_s: float = 10.0
    heartbeat_s: float = 15.0
    max_subscriptions: int = 100
    max_message_bytes: int = 65_536
    max_pending: int = 10_000


class ClientError(Exception):
    def __init__(self, field_name: str, detail: str) -> None:
        super().__init__(detail)
        self.field = field_name
        self.detail = detail


@dataclass
class _Stream:
    """One execution's events towards this client: the last sent and those held back."""

    last_sent: int
    pending: dict[int, dict[str, Any]] = field(default_factory=dict)
    filling: bool = False
    ended: bool = False
    # While a subscription is being set up: events wait, so "subscribed" goes out first.
    held: bool = False


class Connection:
    def __init__(
        self,
        websocket: ServerConnection,
        user_id: str,
        executor: executor_pb2_grpc.ExecutionsServiceStub,
        options: WsOptions,
    ) -> None:
        self._ws = websocket
        self.user_id = user_id
        self._executor = executor
        self._options = options
        self._outgoing: asyncio.Queue[str] = asyncio.Queue(maxsize=options.send_queue)
        self._queued_bytes = 0
        self._streams: dict[str, _Stream] = {}
        # Executions followed because the client asked for them (not via a graph).
        self._executions: set[str] = set()
        self._graphs: set[str] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self.closing = False
        # Live events need room in the queue besides a replayed page.
        self._page = max(1, min(REPLAY_PAGE, options.send_queue // 4))
        self._room = asyncio.Event()

    # -- events in -------------------------------------------------------------------------

    def offer(self, event: dict[str, Any]) -> None:
        if self.closing or str(event.get("user_id")) != self.user_id:
            return
        execution_id = str(event["graph_exec_id"])
        stream = self._streams.get(execution_id)
        if stream is None:
            if str(event.get("graph_id")) not in self._graphs:
                return
            # First sight of an execution of a followed graph: it is sent whole, from its
            # first event (replicas may hand events over out of order, so the first one seen
            # need not be the first; what came before it is fetched from the replay).
            self._forget_ended()
            stream = self._streams[execution_id] = _Stream(last_sent=0)
        self._hold(execution_id, stream, [event])

    def _forget_ended(self) -> None:
        """Graph subscriptions see executions come and go: keep the ended ones bounded."""
        if len(self._streams) < MAX_STREAMS:
            return
        for key in [k for k, v in self._streams.items() if v.ended and k not in self._executions]:
            del self._streams[key]

    def resync(self) -> None:
        for execution_id, stream in self._streams.items():
            self._start_fill(execution_id, stream, delay_s=0)

    def _hold(self, execution_id: str, stream: _Stream, events: list[dict[str, Any]]) -> None:
        for event in events:
            seq = int(event["seq"])
            if seq > stream.last_sent and len(stream.pending) < self._options.max_pending:
                stream.pending[seq] = event
        if stream.held:
            return  # until the subscription is acknowledged
        while stream.last_sent + 1 in stream.pending:
            event = stream.pending.pop(stream.last_sent + 1)
            stream.last_sent += 1
            self._send({"type": "event", "event": event})
            if event["type"] == "execution.status" and event["data"].get("status") in TERMINAL:
                stream.ended = True
        # Older duplicates are dropped; a gap is fetched if it does not fill itself.
        for seq in [seq for seq in stream.pending if seq <= stream.last_sent]:
            del stream.pending[seq]
        if stream.pending:
            self._start_fill(execution_id, stream, delay_s=GAP_GRACE_S)

    def _start_fill(self, execution_id: str, stream: _Stream, *, delay_s: float) -> None:
        if stream.filling or self.closing:
            return
        stream.filling = True
        self._spawn(self._fill(execution_id, stream, delay_s))

    async def _fill(self, execution_id: str, stream: _Stream, delay_s: float) -> None:
        page: list[dict[str, Any]] | None = None
        try:
            if delay_s:
                await asyncio.sleep(delay_s)
            await self._room_for_a_page()
            page = await self._replay(execution_id, stream.last_sent)
        except grpc.aio.AioRpcError as error:
            log.warning("replay of %s failed: %s", execution_id, error.code())
        finally:
            stream.filling = False
        if page is None:
            if stream.pending:
                self._start_fill(execution_id, stream, delay_s=1.0)
            return
        self._hold(execution_id, stream, page)
        if len(page) == self._page:
            self._start_fill(execution_id, stream, delay_s=0)

    async def _room_for_a_page(self) -> None:
        """Replay goes at the client's pace: a page is fetched once the send queue has room
        for it (a client that stops reading is cut off by the send timeout meanwhile)."""
        while not self._has_room() and not self.closing:
            self._room.clear()
            await self._room.wait()

    def _has_room(self) -> bool:
        return self._outgoing.maxsize - self._outgoing.qsize() >= self._page

    async def _replay(self, execution_id: str, after_seq: int) -> list[dict[str, Any]]:
        response = await self._executor.ListExecutionEvents(
            executor_pb2.ListExecutionEventsRequest(
                user_id=self.user_id,
                execution_id=execution_id,
                after_seq=after_seq,
                limit=self._page,
            )
        )
        return [_document(event) for event in response.events]

    # -- client messages -------------------------------------------------------------------

    async def handle(self, raw: str | bytes) -> None:
        try:
            message = json.loads(raw)
        except ValueError:
            raise ClientError("message", "not JSON") from None
        if not isinstance(message, dict):
            raise ClientError("message", "must be a JSON object")
        kind = message.get("type")
        if kind == "ping":
            self._send({"type": "pong"})
        elif kind == "subscribe":
            await self._subscribe(message)
        elif kind == "unsubscribe":
            self._unsubscribe(message)
        else:
            raise ClientError("type", "must be one of subscribe, unsubscribe, ping")

    async def _subscribe(self, message: dict[str, Any]) -> None:
        if len(self._executions) + len(self._graphs) >= self._options.max_subscriptions:
            raise ClientError(
                "type", f"at most {self._options.max_subscriptions} subscriptions per connection"
            )
        execution_id = message.get("graph_exec_id")
        graph_id = message.get("graph_id")
        if (execution_id is None) == (graph_id is None):
            raise ClientError("graph_exec_id", "give exactly one of graph_exec_id and graph_id")
        if graph_id is not None:
            if not isinstance(graph_id, str) or not graph_id or len(graph_id) > 200:
                raise ClientError("graph_id", "must be a graph id")
            self._graphs.add(graph_id)
            self._send({"type": "subscribed", "graph_id": graph_id})
            return
        if not isinstance(execution_id, str) or not execution_id or len(execution_id) > 200:
            raise ClientError("graph_exec_id", "must be an execution id")
        last_seq = message.get("last_seq", 0)
        if not isinstance(last_seq, int) or isinstance(last_seq, bool) or last_seq < 0:
            raise ClientError("last_seq", "must be a non-negative integer")
        # Hold live events from now on, then replay what came before them.
        stream = self._streams.get(execution_id)
        if stream is None:
            stream = self._streams[execution_id] = _Stream(last_sent=last_seq, held=True)
        else:
            stream.last_sent = max(stream.last_sent, last_seq)
        stream.filling = True
        try:
            await self._room_for_a_page()
            page = await self._replay(execution_id, stream.last_sent)
        except grpc.aio.AioRpcError as error:
            del self._streams[execution_id]
            if error.code() in (grpc.StatusCode.NOT_FOUND, grpc.StatusCode.INVALID_ARGUMENT):
                raise ClientError("graph_exec_id", "execution not found") from None
            raise
        self._executions.add(execution_id)
        self._send({"type": "subscribed", "graph_exec_id": execution_id, "last_seq": last_seq})
        stream.filling = False
        stream.held = False
        self._hold(execution_id, stream, page)
        if len(page) == self._page:
            self._start_fill(execution_id, stream, delay_s=0)

    def _unsubscribe(self, message: dict[str, Any]) -> None:
        execution_id = message.get("graph_exec_id")
        graph_id = message.get("graph_id")
        if isinstance(execution_id, str):
            self._executions.discard(execution_id)
            self._streams.pop(execution_id, None)
            self._send({"type": "unsubscribed", "graph_exec_id": execution_id})
        elif isinstance(graph_id, str):
            self._graphs.discard(graph_id)
            for key in [k for k in self._streams if k not in self._executions]:
                del self._streams[key]
            self._send({"type": "unsubscribed", "graph_id": graph_id})
        else:
            raise ClientError("graph_exec_id", "give graph_exec_id or graph_id")

    # -- out -------------------------------------------------------------------------------

    def _send(self, message: dict[str, Any]) -> None:
        if self.closing:
            return
        text = json.dumps(message, separators=(",", ":"))
        if self._queued_bytes + len(text) > self._options.send_queue_bytes:
            self._cut_off("send queue full (bytes)")
            return
        try:
            self._outgoing.put_nowait(text)
        except asyncio.QueueFull:
            self._cut_off("send queue full")
            return
        self._queued_bytes += len(text)

    def _cut_off(self, why: str) -> None:
        if self.closing:
            return
        self.closing = True
        log.info("cutting off a slow client of user %s: %s", self.user_id, why)
        self._spawn(self._ws.close(CLOSE_SLOW, "slow consumer"))

    async def sender(self) -> None:
        while True:
            text = await self._outgoing.get()
            self._queued_bytes -= len(text)
            if self._has_room():
                self._room.set()
            try:
                await asyncio.wait_for(self._ws.send(text), self._options.send_timeout_s)
            except TimeoutError:
                self._cut_off("send timed out")
                return

    async def heartbeat(self) -> None:
        while True:
            await asyncio.sleep(self._options.heartbeat_s)
            self._send({"type": "heartbeat", "time": datetime.now(UTC).isoformat()})

    def error(self, field_name: str, detail: str) -> None:
        self._send({"type": "error", "field": field_name, "detail": detail})

    def _spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def close(self) -> None:
        self.closing = True
        self._room.set()
        for task in list(self._tasks):
            task.cancel()


def _document(event: executor_pb2.ExecutionEvent) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "type": event.type,
        "seq": event.seq,
        "user_id": event.user_id,
        "graph_id": event.graph_id,
        "graph_version": event.graph_version,
        "graph_exec_id": event.graph_exec_id,
        "created_at": event.created_at.ToDatetime(tzinfo=UTC)
        .isoformat(timespec="microseconds")
        .replace("+00:00", "Z"),
        "data": json.loads(event.data_json or "null"),
    }


class WsServer:
    def __init__(
        self,
        hub: Hub,
        executor: executor_pb2_grpc.ExecutionsServiceStub,
        options: WsOptions,
    ) -> None:
        self._hub = hub
        self._executor = executor
        self._options = options
        self._server: Server | None = None

    async def start(self, host: str, port: int) -> int:
        self._server = await serve(
            self._handler,
            host,
            port,
            process_request=self._authorize,
            max_size=self._options.max_message_bytes,
            # Frames beyond these wait in the kernel, not here (the send queue is the bound).
            max_queue=16,
            write_limit=65_536,
        )
        listening = next(iter(self._server.sockets))
        return int(listening.getsockname()[1])

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    def _authorize(self, connection: ServerConnection, request: Request) -> Response | None:
        token = request.headers.get(TOKEN_HEADER, "")
        user_id = request.headers.get(USER_HEADER, "")
        expected = self._options.internal_token
        if not expected or not hmac.compare_digest(token.encode(), expected.encode()):
            return connection.respond(401, "unauthorized\n")
        if not user_id:
            return connection.respond(401, "unauthorized\n")
        return None

    async def _handler(self, websocket: ServerConnection) -> None:
        user_id = websocket.request.headers[USER_HEADER] if websocket.request else ""
        client_socket = websocket.transport.get_extra_info("socket")
        if client_socket is not None:
            client_socket.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SOCKET_BUFFER_BYTES)
        connection = Connection(websocket, user_id, self._executor, self._options)
        await self._hub.add(user_id, connection)
        sender = asyncio.create_task(connection.sender())
        heartbeat = asyncio.create_task(connection.heartbeat())
        try:
            async for raw in websocket:
                try:
                    await connection.handle(raw)
                except ClientError as error:
                    connection.error(error.field, error.detail)
                except grpc.aio.AioRpcError as error:
                    log.warning("executor call failed: %s", error.code())
                    connection.error("graph_exec_id", "events are unavailable; try again")
        except ConnectionClosed:
            pass
        finally:
            await self._hub.remove(user_id, connection)
            await connection.close()
            for task in (sender, heartbeat):
                task.cancel()
            for task in (sender, heartbeat):
                with contextlib.suppress(asyncio.CancelledError, ConnectionClosed):
                    await task
