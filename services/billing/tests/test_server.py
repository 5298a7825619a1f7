"""Server wiring: health reporting and a lost database answered as retryable."""

from __future__ import annotations

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncEngine

from agentloom.billing.v1 import billing_pb2, billing_pb2_grpc
from agentloom_billing.ledger import _is_connection_failure
from agentloom_billing.server import SERVICE_NAME, RunningServer, start
from agentloom_billing.settings import BillingSettings
from agentloom_common.errors import error_info
from agentloom_common.grpc_client import create_channel


async def test_health_reports_the_billing_service_serving(billing_server: RunningServer) -> None:
    channel = create_channel(f"127.0.0.1:{billing_server.port}", deadline_s=5)
    try:
        response = await health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=SERVICE_NAME)
        )
    finally:
        await channel.close()
    assert SERVICE_NAME == "agentloom.billing.v1.BillingService"
    assert response.status == health_pb2.HealthCheckResponse.SERVING


async def test_unreachable_database_answers_unavailable() -> None:
    # Nothing listens on port 1: every connection attempt is refused.
    settings = BillingSettings(
        database_url="postgresql+asyncpg://postgres@127.0.0.1:1/agentloom",
        listen_addr="127.0.0.1:0",
    )
    running = await start(settings)
    channel = create_channel(f"127.0.0.1:{running.port}", deadline_s=10)
    try:
        stub = billing_pb2_grpc.BillingServiceStub(channel)
        try:
            await stub.GetBalance(billing_pb2.GetBalanceRequest(user_id="anyone"))
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE
            assert error_info(error)[0] == "DATABASE_UNAVAILABLE"
        else:
            raise AssertionError("GetBalance succeeded without a database")
    finally:
        await channel.close()
        await running.stop(grace_s=0)


async def test_stopped_server_refuses_calls(billing_database_url: str) -> None:
    running = await start(
        BillingSettings(database_url=billing_database_url, listen_addr="127.0.0.1:0")
    )
    channel = create_channel(f"127.0.0.1:{running.port}", deadline_s=2)
    try:
        stub = billing_pb2_grpc.BillingServiceStub(channel)
        await stub.GetBalance(billing_pb2.GetBalanceRequest(user_id="stopper"))
        await running.stop(grace_s=0)
        try:
            await stub.GetBalance(billing_pb2.GetBalanceRequest(user_id="stopper"))
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.UNAVAILABLE
        else:
            raise AssertionError("a stopped server answered")
    finally:
        await channel.close()


@pytest.mark.parametrize(
    ("sqlstate", "unavailable"), [("53300", True), ("57P01", True), ("23505", False)]
)
async def test_a_full_or_stopping_database_counts_as_unavailable(
    db: AsyncEngine, sqlstate: str, unavailable: bool
) -> None:
    statement = f"DO $$ BEGIN RAISE EXCEPTION 'x' USING ERRCODE = '{sqlstate}'; END $$"
    with pytest.raises(DBAPIError) as raised:
        async with db.connect() as connection:
            await connection.execute(text(statement))
    assert _is_connection_failure(raised.value) is unavailable
