"""The notify service: live events to WebSocket clients (fanned out across replicas through
Redis) and gRPC health."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import redis.asyncio as redis
from aio_pika.abc import AbstractRobustConnection

from agentloom.executor.v1 import executor_pb2_grpc
from agentloom_common import bus, process
from agentloom_common.grpc_client import create_channel
from agentloom_common.grpc_server import RunningServer, start_server, wait_for_shutdown_signal
from agentloom_notify.hub import Hub, Relay
from agentloom_notify.settings import NotifySettings
from agentloom_notify.webhooks.service import WEBHOOK_SERVICE_NAME, Webhooks, start_webhooks
from agentloom_notify.ws import WsOptions, WsServer

SERVICE_NAME = "agentloom.notify.v1.NotifyService"


@dataclass
class Running:
    health: RunningServer
    ws: WsServer
    ws_port: int
    hub: Hub
    redis: redis.Redis
    amqp: AbstractRobustConnection
    executor_channel: grpc.aio.Channel
    webhooks: Webhooks | None = None

    async def stop(self, grace_s: float) -> None:
        if self.webhooks is not None:
            await self.webhooks.stop(grace_s)
        await self.ws.stop()
        await self.hub.stop()
        await self.health.stop(grace_s)
        await self.amqp.close()
        await self.executor_channel.close()
        await self.redis.aclose()


async def start(settings: NotifySettings) -> Running:
    client = redis.Redis.from_url(settings.redis_url)
    amqp = await bus.connect(settings.amqp_url)
    channel = await amqp.channel()
    await bus.Topology().declare(channel)
    await channel.set_qos(prefetch_count=64)
    await Relay(client, settings.events_channel_prefix).start(channel)
    hub = Hub(client, settings.events_channel_prefix)
    await hub.start()
    executor_channel = create_channel(settings.executor_addr, deadline_s=settings.grpc_deadline_s)
    ws = WsServer(
        hub,
        executor_pb2_grpc.ExecutionsServiceStub(executor_channel),
        WsOptions(
            internal_token=settings.internal_token or "",
            send_queue=settings.ws_send_queue,
            send_timeout_s=settings.ws_send_timeout_s,
            heartbeat_s=settings.ws_heartbeat_s,
            max_subscriptions=settings.ws_max_subscriptions,
            max_message_bytes=settings.ws_max_message_bytes,
        ),
    )
    ws_port = await ws.start(settings.ws_host, settings.ws_port)
    webhooks = await start_webhooks(settings)
    health = await start_server(
        [webhooks.register],
        service_names=[SERVICE_NAME, WEBHOOK_SERVICE_NAME],
        address=settings.listen_addr,
    )
    return Running(health, ws, ws_port, hub, client, amqp, executor_channel, webhooks)


@contextlib.asynccontextmanager
async def running(settings: NotifySettings) -> AsyncIterator[Running]:
    service = await start(settings)
    try:
        yield service
    finally:
        await service.stop(settings.shutdown_grace_s)


async def serve(settings: NotifySettings) -> None:
    async with running(settings):
        process.started()
        await wait_for_shutdown_signal()
