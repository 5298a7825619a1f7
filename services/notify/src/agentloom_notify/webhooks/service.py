"""Wiring of outgoing webhooks inside a notify process: the database, the event intake on
the bus, the delivery worker, and the gRPC servicer. `start_webhooks` opens them all,
`Webhooks.stop` closes them in order (stop taking events, let POSTs in flight finish)."""

from __future__ import annotations

import asyncio
import logging
import random
from dataclasses import dataclass

import grpc
import httpx
from aio_pika.abc import AbstractQueue, AbstractRobustConnection
from sqlalchemy.ext.asyncio import AsyncEngine

from agentloom.notify.v1 import webhooks_pb2, webhooks_pb2_grpc
from agentloom_common import bus
from agentloom_common.db import create_engine, create_session_factory
from agentloom_common.netpolicy import AddressPolicy
from agentloom_notify.webhooks.delivery import DeliveryOptions, DeliveryWorker
from agentloom_notify.webhooks.intake import EventIntake
from agentloom_notify.webhooks.sealing import SecretBox
from agentloom_notify.webhooks.servicer import WebhookServicer
from agentloom_notify.webhooks.settings import DEV_WEBHOOK_KEY, WebhookSettings
from agentloom_notify.webhooks.targets import guarded_client

log = logging.getLogger(__name__)

WEBHOOK_SERVICE_NAME = webhooks_pb2.DESCRIPTOR.services_by_name["WebhookService"].full_name


def secret_box(settings: WebhookSettings) -> SecretBox:
    keys = {name: value.get_secret_value() for name, value in settings.webhook_secret_keys.items()}
    if DEV_WEBHOOK_KEY in keys.values():
        log.warning("a webhook secret key is the development default")
    return SecretBox.from_base64(keys, settings.webhook_secret_key_current)


def address_policy(settings: WebhookSettings) -> AddressPolicy:
    return AddressPolicy(settings.webhook_allow_private_targets, settings.webhook_allowed_networks)


def delivery_options(settings: WebhookSettings) -> DeliveryOptions:
    return DeliveryOptions(
        timeout_s=settings.webhook_timeout_s,
        retry_schedule_s=tuple(settings.webhook_retry_schedule_s),
        retry_scale=settings.webhook_retry_scale,
        retry_jitter=settings.webhook_retry_jitter,
        disable_after_s=settings.webhook_disable_after_s,
        concurrency=settings.webhook_concurrency,
        poll_interval_s=settings.webhook_poll_interval_s,
        lease_margin_s=settings.webhook_lease_margin_s,
    )


@dataclass
class Webhooks:
    servicer: WebhookServicer
    worker: DeliveryWorker
    engine: AsyncEngine
    connection: AbstractRobustConnection
    queue: AbstractQueue
    consumer_tag: str
    worker_task: asyncio.Task[None]
    client: httpx.AsyncClient

    def register(self, server: grpc.aio.Server) -> None:
        webhooks_pb2_grpc.add_WebhookServiceServicer_to_server(self.servicer, server)

    async def stop(self, grace_s: float = 1.0) -> None:
        """Stop taking events, finish POSTs in flight within grace_s, close everything."""
        try:
            await self.queue.cancel(self.consumer_tag)
        except Exception:  # the broker is gone: its unacked messages go back anyway
            log.warning("could not cancel the webhook intake consumer")
        await self.worker.stop(grace_s)
        self.worker_task.cancel()
        await asyncio.gather(self.worker_task, return_exceptions=True)
        await self.connection.close()
        await self.client.aclose()
        await self.engine.dispose()


async def start_webhooks(
    settings: WebhookSettings, *, rng: random.Random | None = None
) -> Webhooks:
    """Open the database and the bus, start the intake and the delivery worker.

    The schema must already be migrated (`python -m agentloom_notify migrate`).
    """
    # httpx logs every request's URL at INFO: endpoint URLs may carry the integrator's tokens.
    logging.getLogger("httpx").setLevel(logging.WARNING)
    box = secret_box(settings)  # a bad key fails the start
    policy = address_policy(settings)
    engine = create_engine(settings.database_url, pool_size=settings.webhook_db_pool_size)
    sessions = create_session_factory(engine)
    client = guarded_client(
        policy, timeout_s=settings.webhook_timeout_s, max_connections=settings.webhook_concurrency
    )
    worker = DeliveryWorker(sessions, box, client, delivery_options(settings), rng=rng)
    try:
        connection = await bus.connect(settings.amqp_url)
    except BaseException:
        await client.aclose()
        await engine.dispose()
        raise
    async with connection.channel() as channel:
        await bus.Topology().declare(channel)
    channel = await connection.channel()
    await channel.set_qos(prefetch_count=settings.webhook_intake_prefetch)
    intake = EventIntake(sessions, worker.wake)
    queue, tag = await bus.consume(channel, bus.WEBHOOKS_EVENTS_QUEUE, intake.handle)
    servicer = WebhookServicer(
        sessions,
        box,
        policy,
        max_endpoints_per_user=settings.webhook_max_endpoints_per_user,
        max_url_length=settings.webhook_max_url_length,
        on_due=worker.wake,
    )
    task = asyncio.create_task(worker.run(), name="webhook-deliveries")
    return Webhooks(servicer, worker, engine, connection, queue, tag, task, client)
