"""The notify process: gRPC health, and a WebSocket server that takes only connections the
gateway forwards (with the internal token)."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc
from websockets.asyncio.client import connect
from websockets.exceptions import InvalidStatus

from agentloom_common.migrations import upgrade
from agentloom_notify.server import SERVICE_NAME, start
from agentloom_notify.settings import NotifySettings


async def test_notify_serves_health_and_guards_its_websocket(
    database_url: str, amqp_url: str
) -> None:
    await asyncio.to_thread(upgrade, database_url, "agentloom_notify", "notify")
    token = uuid.uuid4().hex
    running = await start(
        NotifySettings(
            listen_addr="127.0.0.1:0",
            ws_port=0,
            database_url=database_url,
            amqp_url=amqp_url,
            internal_token=token,
            events_channel_prefix=f"test:{uuid.uuid4().hex}:",
        )
    )
    url = f"ws://127.0.0.1:{running.ws_port}"
    with pytest.raises(InvalidStatus) as refused:
        await connect(url, additional_headers={"x-agentloom-user-id": "u1"})
    assert refused.value.response.status_code == 401
    with pytest.raises(InvalidStatus):
        await connect(
            url,
            additional_headers={
                "x-agentloom-user-id": "u1",
                "x-agentloom-internal-token": "not-" + token,
            },
        )
    async with await connect(
        url, additional_headers={"x-agentloom-user-id": "u1", "x-agentloom-internal-token": token}
    ) as ws:
        await ws.send('{"type": "ping"}')
        assert await ws.recv() == '{"type":"pong"}'

    async with grpc.aio.insecure_channel(f"127.0.0.1:{running.health.port}") as channel:
        stub = health_pb2_grpc.HealthStub(channel)
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        await running.health.health.enter_graceful_shutdown()
        reply = await stub.Check(health_pb2.HealthCheckRequest(service=SERVICE_NAME))
        assert reply.status == health_pb2.HealthCheckResponse.NOT_SERVING
    await running.stop(0.5)
