"""grpc.aio server helpers: health service, request ids, error mapping, graceful stop."""

from __future__ import annotations

import asyncio
import logging
import signal
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, cast

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_status import rpc_status
from sqlalchemy.exc import DBAPIError

from agentloom_common.errors import ServiceError, Unavailable
from agentloom_common.logging import request_id_var

log = logging.getLogger(__name__)

REQUEST_ID_KEY = "x-request-id"


def _guarded(
    inner: Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]], method: str
) -> Callable[[Any, grpc.aio.ServicerContext], Awaitable[Any]]:
    """A unary-unary method that binds the caller's request id to the context and maps
    `ServiceError` to a status. Any other exception becomes INTERNAL with a generic
    message: details stay in the log."""

    async def guarded(request: Any, context: grpc.aio.ServicerContext) -> Any:
        request_id = None
        for key, value in context.invocation_metadata() or ():
            if key == REQUEST_ID_KEY:
                request_id = value
                break
        token = request_id_var.set(str(request_id or uuid.uuid4()))
        try:
            return await inner(request, context)
        except ServiceError as error:
            await context.abort_with_status(rpc_status.to_status(error.to_status()))
        except (asyncio.CancelledError, grpc.aio.AbortError):
            raise
        except Exception as error:
            if is_outage(error):
                # The database (or another server) is down or full: retryable, not a bug.
                log.warning("%s failed on an outage: %s", method, type(error).__name__)
                unavailable = Unavailable("a backing service is unavailable; retry shortly")
                await context.abort_with_status(rpc_status.to_status(unavailable.to_status()))
            log.exception("unhandled error in %s", method)
            await context.abort(grpc.StatusCode.INTERNAL, "internal error")
        finally:
            request_id_var.reset(token)

    return guarded


def _guard_handlers(
    service: str, handlers: dict[str, grpc.RpcMethodHandler]
) -> dict[str, grpc.RpcMethodHandler]:
    guarded: dict[str, grpc.RpcMethodHandler] = {}
    for name, handler in handlers.items():
        if handler.unary_unary is not None:
            handler = grpc.unary_unary_rpc_method_handler(
                _guarded(handler.unary_unary, f"/{service}/{name}"),
                request_deserializer=handler.request_deserializer,
                response_serializer=handler.response_serializer,
            )
        guarded[name] = handler
    return guarded


class _GuardedGeneric(grpc.GenericRpcHandler):  # type: ignore[misc]
    """A generic handler whose unary-unary handlers are guarded, each wrapped once."""

    def __init__(self, inner: grpc.GenericRpcHandler) -> None:
        self._inner = inner
        self._guarded: dict[str, tuple[grpc.RpcMethodHandler, grpc.RpcMethodHandler]] = {}

    def service(self, details: grpc.HandlerCallDetails) -> grpc.RpcMethodHandler | None:
        handler = self._inner.service(details)
        if handler is None or handler.unary_unary is None:
            return handler
        method: str = details.method
        held = self._guarded.get(method)
        if held is None or held[0] is not handler:
            service, _, name = method.lstrip("/").rpartition("/")
            held = (handler, _guard_handlers(service, {name: handler})[name])
            self._guarded[method] = held
        return held[1]


class _GuardingServer:
    """What a generated `add_*Servicer_to_server` is given: it registers the service's
    method handlers with each unary-unary one guarded (`_guarded`), wrapped once here.

    Not a `grpc.aio` server interceptor: with one, every call first awaited the
    interceptor to find its handler and built a new handler around it, which cost the
    executions API more CPU per call than the servicer's own work (py-spy under bench
    W4, issue 8)."""

    def __init__(self, server: grpc.aio.Server) -> None:
        self._server = server

    def add_generic_rpc_handlers(self, handlers: Sequence[grpc.GenericRpcHandler]) -> None:
        self._server.add_generic_rpc_handlers(tuple(_GuardedGeneric(h) for h in handlers))

    def add_registered_method_handlers(
        self, service: str, handlers: dict[str, grpc.RpcMethodHandler]
    ) -> None:
        self._server.add_registered_method_handlers(service, _guard_handlers(service, handlers))


def is_outage(error: BaseException) -> bool:
    """A failure of infrastructure rather than of the request: a lost or refused database
    connection (restart, "too many clients"), a timeout, a closed socket."""
    if isinstance(error, ConnectionError | TimeoutError | OSError):
        return True
    if isinstance(error, DBAPIError):
        if error.connection_invalidated:
            return True
        text = str(error.orig if error.orig is not None else error).lower()
        return any(
            marker in text
            for marker in (
                "too many clients",
                "connection",
                "cannot connect now",
                "shutting down",
                "terminating",
                "timeout",
            )
        )
    return False


async def create_server(
    register: Sequence[Callable[[grpc.aio.Server], None]],
    *,
    service_names: Sequence[str],
    address: str,
) -> tuple[grpc.aio.Server, int, health.aio.HealthServicer]:
    """Build and start a server with the health service; returns it with its bound port.

    `address` may use port 0 to let the OS choose, which is what tests do.
    """
    server = grpc.aio.server()
    guarding = _GuardingServer(server)
    for add in register:
        add(cast(grpc.aio.Server, guarding))
    health_servicer = health.aio.HealthServicer()
    health_pb2_grpc.add_HealthServicer_to_server(health_servicer, server)
    port = server.add_insecure_port(address)
    await server.start()
    for name in [*service_names, ""]:
        await health_servicer.set(name, health_pb2.HealthCheckResponse.SERVING)
    return server, port, health_servicer


@dataclass
class RunningServer:
    """A started server, its bound port, and its health service (for a graceful stop)."""

    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer

    async def stop(self, grace_s: float = 1.0) -> None:
        await graceful_stop(self.server, self.health, grace_s)


async def start_server(
    register: Sequence[Callable[[grpc.aio.Server], None]],
    *,
    service_names: Sequence[str],
    address: str,
) -> RunningServer:
    """`create_server`, returned as a RunningServer."""
    server, port, health_servicer = await create_server(
        register, service_names=service_names, address=address
    )
    return RunningServer(server, port, health_servicer)


async def wait_for_shutdown_signal() -> None:
    """Return when the process receives SIGTERM or SIGINT."""
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()


async def graceful_stop(
    server: grpc.aio.Server, health_servicer: health.aio.HealthServicer, grace_s: float
) -> None:
    """Report NOT_SERVING, stop taking calls, and let in-flight calls finish within grace_s."""
    await health_servicer.enter_graceful_shutdown()
    await server.stop(grace_s)
