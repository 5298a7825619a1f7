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

from fastapi import APIRouter, WebSocket
from starlette.websockets import WebSocketDisconnect
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus, InvalidURI

from agentloom_gateway.auth import Principal

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
            additional_headers={
                USER_HEADER: principal.user_id,
                TOKEN_HEADER: settings.internal_token or "",
            },
            open_timeout=5,
            max_size=None,
            max_queue=4,
        )
    except (OSError, TimeoutError, InvalidStatus, InvalidURI) as error:
        log.warning("notify's WebSocket server is unreachable: %s", error)
        await websocket.close(CLOSE_UNAVAILABLE, "live events are unavailable; try again")
        return
    async with upstream:
        await _relay(websocket, upstream, settings.ws_send_timeout_s)


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


async def _notify_to_client(
    websocket: WebSocket, upstream: ClientConnection, send_timeout_s: float
) -> tuple[int, str]:
    """Frames from notify to the client; returns how the connection is to be closed: as
    notify closed it, or 4008 when the client stopped reading (a send blocked too long)."""
    try:
        async for frame in upstream:
            text = frame if isinstance(frame, str) else frame.decode()
            try:
                await asyncio.wait_for(websocket.send_text(text), send_timeout_s)
            except TimeoutError:
                return CLOSE_SLOW, "slow consumer"
    except ConnectionClosed:
        pass
    received = upstream.protocol.close_rcvd
    if received is None:
        return CLOSE_UNAVAILABLE, "live events are unavailable; try again"
    return received.code, received.reason
