"""`/ws`: live execution events over WebSocket, through the gateway's address.

The gateway authenticates the client (an API key or a JWT, as `Authorization: Bearer`,
`X-API-Key`, or the `token` query parameter for browsers, which cannot set headers; the
`executions:read` scope is required) and forwards the connection to the notify service's
WebSocket server with the user id and the internal token. Frames pass through unchanged
(the protocol is notify's: docs/events.md). Backpressure passes through too: the gateway
reads the next frame from notify only once the previous one went to the client, so a slow
client fills notify's bounded queue and notify cuts it off (4008), which the gateway relays.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from urllib.parse import urlsplit

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

from agentloom_gateway.auth import Principal
from agentloom_gateway.middleware import SERVER_SEND_KEY

log = logging.getLogger(__name__)

router = APIRouter()

REQUIRED_SCOPE = "executions:read"
USER_HEADER = "x-agentloom-user-id"
TOKEN_HEADER = "x-agentloom-internal-token"
CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403
CLOSE_UNAVAILABLE = 1013  # "try again later"
CLOSE_SLOW = 4008
MAX_CLIENT_FRAME = 65_536
UPSTREAM_BUFFER_BYTES = 262_144
# Bytes buffered towards a client (above the kernel's socket buffer) before sends wait.
CLIENT_BUFFER_BYTES = 1_048_576
SEND_POLL_S = 0.05


def _credential(websocket: WebSocket) -> str | None:
    authorization = websocket.headers.get("authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip() or None
    return websocket.headers.get("x-api-key") or websocket.query_params.get("token") or None


async def _authenticate(websocket: WebSocket, credential: str | None) -> Principal | None:
    if not credential:
        return None
    for authenticator in websocket.app.state.resources.authenticators:
        if authenticator.accepts(credential):
            principal: Principal | None = await authenticator.authenticate(credential)
            return principal
    return None


@router.websocket("/ws")
async def live_events(websocket: WebSocket) -> None:
    settings = websocket.app.state.resources.settings
    principal = await _authenticate(websocket, _credential(websocket))
    await websocket.accept()
    if principal is None:
        await websocket.close(CLOSE_UNAUTHENTICATED, "the credentials are missing or not valid")
        return
    if REQUIRED_SCOPE not in principal.scopes:
        await websocket.close(CLOSE_FORBIDDEN, f"the {REQUIRED_SCOPE} scope is required")
        return
    try:
        upstream = await connect(
            settings.notify_ws_url,
            sock=await _upstream_socket(settings.notify_ws_url),
            additional_headers={
                USER_HEADER: principal.user_id,
                TOKEN_HEADER: settings.internal_token or "",
            },
            open_timeout=5,
            # Local traffic: compression would only cost CPU, and hide how much is buffered.
            compression=None,
            max_size=None,
            max_queue=4,
        )
    except (OSError, TimeoutError, InvalidStatus, InvalidURI) as error:
        log.warning("notify's WebSocket server is unreachable: %s", error)
        await websocket.close(CLOSE_UNAVAILABLE, "live events are unavailable; try again")
        return
    async with upstream:
        await _relay(websocket, upstream, settings.ws_send_timeout_s)


async def _upstream_socket(url: str) -> socket.socket:
    """A connected socket to notify with a fixed receive buffer: autotuned, it may hold tens
    of megabytes (net.ipv4.tcp_rmem), which would hide a client that stopped reading."""
    parsed = urlsplit(url)
    port = parsed.port or (443 if parsed.scheme == "wss" else 80)
    loop = asyncio.get_running_loop()
    family, kind, proto, _name, address = (
        await loop.getaddrinfo(parsed.hostname, port, type=socket.SOCK_STREAM)
    )[0]
    upstream = socket.socket(family, kind, proto)
    try:
        upstream.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, UPSTREAM_BUFFER_BYTES)
        upstream.setblocking(False)
        await asyncio.wait_for(loop.sock_connect(upstream, address), 5)
    except BaseException:
        upstream.close()
        raise
    return upstream


async def _relay(websocket: WebSocket, upstream: ClientConnection, send_timeout_s: float) -> None:
    to_notify = asyncio.create_task(_client_to_notify(websocket, upstream))
    to_client = asyncio.create_task(_notify_to_client(websocket, upstream, send_timeout_s))
    done, pending = await asyncio.wait({to_notify, to_client}, return_when="FIRST_COMPLETED")
    for task in pending:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError, Exception):
            await task
    code, reason = 1000, ""
    if to_client in done and not to_client.cancelled():
        code, reason = to_client.result()
    await upstream.close()
    with contextlib.suppress(RuntimeError, WebSocketDisconnect):
        await websocket.close(code, reason)


async def _client_to_notify(websocket: WebSocket, upstream: ClientConnection) -> None:
    while True:
        message = await websocket.receive()
        if message["type"] == "websocket.disconnect":
            return
        data = message.get("text")
        if data is None and message.get("bytes") is not None:
            data = message["bytes"].decode("utf-8", "replace")
        if data is None:
            continue
        if len(data) > MAX_CLIENT_FRAME:
            raise ValueError("frame too large")
        await upstream.send(data)


async def _send_paced(websocket: WebSocket, text: str) -> None:
    """Send once the connection's write buffer is below the limit. uvicorn's WebSocket
    `send` returns as soon as the frame is buffered, even when the client reads nothing
    (measured: every 250 KB frame went out "at once" to a client with a 4 KB window), so
    the gateway waits on the transport's buffer itself; the caller's timeout cuts off."""
    transport = _transport(websocket)
    while transport is not None and transport.get_write_buffer_size() > CLIENT_BUFFER_BYTES:
        if transport.is_closing():
            break
        await asyncio.sleep(SEND_POLL_S)
    await websocket.send_text(text)


def _transport(websocket: WebSocket) -> asyncio.WriteTransport | None:
    """The client connection's transport, from the server's own ASGI `send` (a method of
    uvicorn's protocol object, kept by the middleware); None where it is not exposed."""
    protocol = getattr(websocket.scope.get(SERVER_SEND_KEY), "__self__", None)
    transport = getattr(protocol, "transport", None)
    if transport is None or not hasattr(transport, "get_write_buffer_size"):
        return None
    return transport  # type: ignore[no-any-return]


async def _notify_to_client(
    websocket: WebSocket, upstream: ClientConnection, send_timeout_s: float
) -> tuple[int, str]:
    """Frames from notify to the client; returns how the connection is to be closed: as
    notify closed it, or 4008 when the client stopped reading (a send blocked too long)."""
    try:
        async for frame in upstream:
            text = frame if isinstance(frame, str) else frame.decode()
            try:
                await asyncio.wait_for(_send_paced(websocket, text), send_timeout_s)
            except TimeoutError:
                return CLOSE_SLOW, "slow consumer"
    except ConnectionClosed:
        pass
    received = upstream.protocol.close_rcvd
    if received is None:
        return CLOSE_UNAVAILABLE, "live events are unavailable; try again"
    return received.code, received.reason
