"""Guarded gRPC handlers: service errors keep their status, outages become UNAVAILABLE
(retryable), anything else INTERNAL with no detail."""

from __future__ import annotations

import asyncpg
import grpc
import pytest
from sqlalchemy.ext.asyncio import create_async_engine

from agentloom_common.errors import NotFound, error_info
from agentloom_common.grpc_server import is_outage, start_server


def _failing_service(error: BaseException) -> grpc.GenericRpcHandler:
    """A real gRPC service, `test.Probe/Call`, whose handler raises `error`."""

    async def call(request: bytes, context: grpc.aio.ServicerContext) -> bytes:
        raise error

    handler = grpc.unary_unary_rpc_method_handler(
        call, request_deserializer=lambda b: b, response_serializer=lambda b: b
    )
    return grpc.method_handlers_generic_handler("test.Probe", {"Call": handler})


async def _refused_database_error() -> BaseException:
    engine = create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none")
    try:
        async with engine.connect():
            pass
    except Exception as error:
        return error
    finally:
        await engine.dispose()
    raise AssertionError("connecting to port 1 succeeded")


@pytest.mark.parametrize(
    ("make_error", "code", "reason"),
    [
        (
            lambda: NotFound("no such thing", reason="THING_NOT_FOUND"),
            "NOT_FOUND",
            "THING_NOT_FOUND",
        ),
        (lambda: ConnectionRefusedError("refused"), "UNAVAILABLE", "UNAVAILABLE"),
        (lambda: ValueError("a bug"), "INTERNAL", ""),
    ],
)
async def test_errors_map_to_statuses(make_error, code: str, reason: str) -> None:  # type: ignore[no-untyped-def]
    service = _failing_service(make_error())
    running = await start_server(
        [lambda s: s.add_generic_rpc_handlers((service,))],
        service_names=[],
        address="127.0.0.1:0",
    )
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            call = channel.unary_unary("/test.Probe/Call")
            with pytest.raises(grpc.aio.AioRpcError) as caught:
                await call(b"", timeout=5)
        assert caught.value.code().name == code
        assert error_info(caught.value)[0] == reason
        if code == "INTERNAL":
            assert "a bug" not in (caught.value.details() or "")
    finally:
        await running.stop(0)


async def test_a_refused_database_connection_is_an_outage() -> None:
    assert is_outage(await _refused_database_error())
    assert not is_outage(ValueError("x"))
    assert isinstance(asyncpg.PostgresError, type)
