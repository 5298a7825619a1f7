"""Channels from `create_channel` send the caller's request id and a default deadline;
servers from `start_server` bind that request id and map errors, for methods registered by
name (as generated code registers them) as well as for generic handlers."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import grpc
import pytest

from agentloom_common.errors import NotFound, error_info
from agentloom_common.grpc_client import create_channel
from agentloom_common.grpc_server import RunningServer, start_server
from agentloom_common.logging import request_id_var


async def _echo_request_id(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    return (request_id_var.get() or "").encode()


async def _slow(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    await asyncio.sleep(2)
    return b"late"


async def _missing(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
    raise NotFound("no such thing", reason="THING_NOT_FOUND")


def _handlers() -> dict[str, grpc.RpcMethodHandler]:
    return {
        name: grpc.unary_unary_rpc_method_handler(
            call, request_deserializer=lambda b: b, response_serializer=lambda b: b
        )
        for name, call in (("Echo", _echo_request_id), ("Slow", _slow), ("Missing", _missing))
    }


def _registered(server: grpc.aio.Server) -> None:
    """As generated `add_*Servicer_to_server` code does: generic, then by name."""
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.Probe", _handlers()),)
    )
    server.add_registered_method_handlers("test.Probe", _handlers())


def _generic(server: grpc.aio.Server) -> None:
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler("test.Probe", _handlers()),)
    )


@pytest.mark.parametrize("register", [_registered, _generic])
async def test_request_id_deadline_and_errors_cross_the_call(
    register: Callable[[grpc.aio.Server], None],
) -> None:
    running: RunningServer = await start_server([register], service_names=[], address="127.0.0.1:0")
    channel = create_channel(f"127.0.0.1:{running.port}", deadline_s=0.5)
    try:

        def method(name: str) -> grpc.aio.UnaryUnaryMultiCallable:
            return channel.unary_unary(
                f"/test.Probe/{name}",
                request_serializer=lambda b: b,
                response_deserializer=lambda b: b,
                _registered_method=register is _registered,
            )

        token = request_id_var.set("rid-42")
        try:
            assert await method("Echo")(b"") == b"rid-42"
        finally:
            request_id_var.reset(token)
        # Without a request id of its own, the call gets a fresh one on the server.
        fresh = await method("Echo")(b"")
        assert fresh and fresh != b"rid-42"
        with pytest.raises(grpc.aio.AioRpcError) as slow:
            await method("Slow")(b"")
        assert slow.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
        # A deadline the caller gives wins over the default.
        assert await method("Echo")(b"", timeout=5) != b""
        with pytest.raises(grpc.aio.AioRpcError) as missing:
            await method("Missing")(b"")
        assert missing.value.code() == grpc.StatusCode.NOT_FOUND
        assert error_info(missing.value)[0] == "THING_NOT_FOUND"
    finally:
        await channel.close()
        await running.stop(0)
