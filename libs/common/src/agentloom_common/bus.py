"""The RabbitMQ bus: topology in one place, a confirming publisher, a manual-ack consumer.

Facts this relies on (RabbitMQ 3.10, aio-pika): quorum queues take `x-delivery-limit`,
`x-single-active-consumer` and `x-dead-letter-exchange`; an unroutable message is dropped
silently unless it is published `mandatory` on a channel with `on_return_raises=True`.
"""

from __future__ import annotations

import asyncio
import logging
import zlib
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass

import aio_pika
from aio_pika.abc import (
    AbstractChannel,
    AbstractExchange,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from pamqp.common import FieldTable

log = logging.getLogger(__name__)

SCHEDULER_EXCHANGE = "agentloom.scheduler"
JOBS_EXCHANGE = "agentloom.jobs"
JOBS_QUEUE = "agentloom.jobs"
JOBS_ROUTING_KEY = "node"
CONTROL_EXCHANGE = "agentloom.control"
EVENTS_EXCHANGE = "agentloom.events"
# Every event, for the notify replicas (one of them takes each) to fan out to WebSockets.
NOTIFY_EVENTS_QUEUE = "agentloom.events.notify"
# Every event again, for the webhook intake (deliveries to integrators' endpoints).
WEBHOOKS_EVENTS_QUEUE = "agentloom.events.webhooks"
# Graph changes (a new version, another active version, a graph deleted), announced by the
# graphs service to whoever holds graph versions: each listener binds a queue of its own.
GRAPHS_EXCHANGE = "agentloom.graphs"
DEAD_EXCHANGE = "agentloom.dead"
DEAD_QUEUE = "agentloom.dead"

# A message redelivered this many times (e.g. it crashes its consumer) is dead-lettered.
DELIVERY_LIMIT = 10


@dataclass(frozen=True)
class Topology:
    """Every exchange and queue the platform uses; `declare` is idempotent."""

    partitions: int = 4

    def partition_queue(self, partition: int) -> str:
        return f"{SCHEDULER_EXCHANGE}.p{partition}"

    def partition_key(self, partition: int) -> str:
        return f"p{partition}"

    def partition_of(self, execution_id: str) -> int:
        """Executions hash onto a fixed set of partitions, each owned by one scheduler."""
        return zlib.crc32(execution_id.encode()) % self.partitions

    async def declare(self, channel: AbstractChannel) -> None:
        dead = await channel.declare_exchange(
            DEAD_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True
        )
        dead_queue = await channel.declare_queue(
            DEAD_QUEUE, durable=True, arguments={"x-queue-type": "quorum"}
        )
        await dead_queue.bind(dead)
        poison_args: FieldTable = {
            "x-queue-type": "quorum",
            "x-delivery-limit": DELIVERY_LIMIT,
            "x-dead-letter-exchange": DEAD_EXCHANGE,
        }
        scheduler = await channel.declare_exchange(
            SCHEDULER_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True
        )
        for partition in range(self.partitions):
            queue = await channel.declare_queue(
                self.partition_queue(partition),
                durable=True,
                arguments={**poison_args, "x-single-active-consumer": True},
            )
            await queue.bind(scheduler, self.partition_key(partition))
        jobs = await channel.declare_exchange(
            JOBS_EXCHANGE, aio_pika.ExchangeType.DIRECT, durable=True
        )
        jobs_queue = await channel.declare_queue(JOBS_QUEUE, durable=True, arguments=poison_args)
        await jobs_queue.bind(jobs, JOBS_ROUTING_KEY)
        await channel.declare_exchange(CONTROL_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True)
        await declare_graphs_exchange(channel)
        events = await channel.declare_exchange(
            EVENTS_EXCHANGE, aio_pika.ExchangeType.TOPIC, durable=True
        )
        notify_queue = await channel.declare_queue(
            NOTIFY_EVENTS_QUEUE, durable=True, arguments=poison_args
        )
        await notify_queue.bind(events, "#")
        webhooks_queue = await channel.declare_queue(
            WEBHOOKS_EVENTS_QUEUE, durable=True, arguments=poison_args
        )
        await webhooks_queue.bind(events, "#")


async def declare_graphs_exchange(channel: AbstractChannel) -> AbstractExchange:
    """The graphs service's announcements (it declares only this; `Topology` declares it too)."""
    return await channel.declare_exchange(
        GRAPHS_EXCHANGE, aio_pika.ExchangeType.FANOUT, durable=True
    )


async def connect(amqp_url: str) -> AbstractRobustConnection:
    """A robust connection: it reconnects and restores channels, queues and consumers."""
    return await aio_pika.connect_robust(amqp_url, client_properties={"product": "agentloom"})


class Publisher:
    """Publishes persistent messages with confirms; unroutable messages raise."""

    def __init__(self, connection: AbstractRobustConnection) -> None:
        self._connection = connection
        self._channel: AbstractChannel | None = None
        self._exchanges: dict[str, AbstractExchange] = {}

    async def start(self) -> None:
        self._channel = await self._connection.channel(
            publisher_confirms=True, on_return_raises=True
        )

    async def publish(
        self,
        exchange: str,
        routing_key: str,
        body: bytes,
        *,
        message_id: str,
        mandatory: bool = True,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        """Return once the broker has confirmed the message (raises if it was not routed)."""
        if self._channel is None:
            raise RuntimeError("Publisher.start() was not awaited")
        target = self._exchanges.get(exchange)
        if target is None:
            target = await self._channel.get_exchange(exchange, ensure=False)
            self._exchanges[exchange] = target
        message = aio_pika.Message(
            body,
            message_id=message_id,
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
            headers=dict(headers) if headers else None,
        )
        await target.publish(message, routing_key, mandatory=mandatory)

    async def close(self) -> None:
        if self._channel is not None and not self._channel.is_closed:
            await self._channel.close()


class PoisonMessage(Exception):
    """Raised by a handler for a message that can never succeed: it is dead-lettered at once."""


Handler = Callable[[AbstractIncomingMessage], Awaitable[None]]


async def consume(
    channel: AbstractChannel, queue_name: str, handler: Handler, *, exclusive: bool = False
) -> tuple[AbstractQueue, str]:
    """Consume with manual acks: ack after the handler returns (its work is persisted),
    requeue when it fails (the delivery limit dead-letters a message that always fails),
    reject without requeue on `PoisonMessage`. Returns the queue and consumer tag."""
    # Declared (passively) rather than fetched: a robust channel re-declares and re-attaches
    # the consumers of queues it declared when the broker comes back, and only those.
    queue = await channel.declare_queue(queue_name, passive=True)

    async def on_message(message: AbstractIncomingMessage) -> None:
        try:
            await handler(message)
        except PoisonMessage as error:
            log.error("dead-lettering message %s: %s", message.message_id, error)
            await message.reject(requeue=False)
        except asyncio.CancelledError:
            await _requeue_quietly(message)
            raise
        except Exception:
            # Most failures here are an outage (database, broker, a service): wait before
            # handing the message back, longer each time, so the delivery limit that stops
            # poison messages is not burnt through in a second.
            delay = requeue_delay_s(message)
            log.exception(
                "handler failed for message %s; requeued in %.1fs", message.message_id, delay
            )
            await asyncio.sleep(delay)
            await _requeue_quietly(message)
        else:
            await message.ack()

    tag = await queue.consume(on_message, exclusive=exclusive)
    return queue, tag


def requeue_delay_s(message: AbstractIncomingMessage) -> float:
    """0.2 s doubling with each delivery (quorum queues count them), at most 10 s."""
    count = (message.headers or {}).get("x-delivery-count", 0)
    attempts = count if isinstance(count, int) else 0
    return float(min(10.0, 0.2 * 2**attempts))


async def _requeue_quietly(message: AbstractIncomingMessage) -> None:
    try:
        await message.nack(requeue=True)
    except Exception:  # the channel is gone: the broker requeues unacked messages itself
        log.warning("could not nack message %s", message.message_id)
