"""The live relay and hub against real RabbitMQ and Redis: a batch that names its owner goes
to the owner's channel as it came, unparsed; one that does not is split by owner; a hub hands
each listener only its own user's events."""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import aio_pika
import redis.asyncio as redis

from agentloom_common import bus, event_batches
from agentloom_notify.hub import Hub, Relay, user_channel


def _event(user_id: str, seq: int) -> bytes:
    document = {"event_id": f"x:{seq}", "type": "node.output", "seq": seq, "user_id": user_id}
    return json.dumps(document).encode()


class _Listener:
    def __init__(self, expected: int) -> None:
        self.events: list[dict[str, Any]] = []
        self.expected = expected
        self.done = asyncio.Event()

    def offer(self, event: dict[str, Any]) -> None:
        self.events.append(event)
        if len(self.events) >= self.expected:
            self.done.set()

    def resync(self) -> None:
        pass


async def test_batches_reach_their_owners_channels_and_listeners(amqp_url: str) -> None:
    prefix = f"test:{uuid.uuid4().hex[:8]}:"
    alice, bob = f"alice-{uuid.uuid4().hex[:6]}", f"bob-{uuid.uuid4().hex[:6]}"
    client = redis.Redis.from_url("redis://127.0.0.1:6379/0")
    watcher = client.pubsub(ignore_subscribe_messages=True)
    await watcher.subscribe(user_channel(prefix, alice), user_channel(prefix, bob))
    hub = Hub(client, prefix)
    await hub.start()
    listener = _Listener(expected=4)
    await hub.add(alice, listener)
    connection = await bus.connect(amqp_url)
    try:
        channel = await connection.channel()
        await bus.Topology().declare(channel)
        await Relay(client, prefix).start(await connection.channel())
        exchange = await channel.get_exchange(bus.EVENTS_EXCHANGE)

        headed = event_batches.encode([_event(alice, 1), _event(alice, 2)])
        message = aio_pika.Message(headed, headers={event_batches.OWNER: alice})
        await exchange.publish(message, "node.output")
        received: dict[str, list[bytes]] = {alice: [], bob: []}
        async with asyncio.timeout(10):
            while not received[alice]:
                got = await watcher.get_message(timeout=1.0)
                if got is not None:
                    received[got["channel"].decode().removeprefix(prefix)].append(got["data"])
            mixed = event_batches.encode([_event(alice, 3), _event(bob, 4)])
            await exchange.publish(aio_pika.Message(mixed), "node.output")
            while sum(map(len, received.values())) < 3:
                got = await watcher.get_message(timeout=1.0)
                if got is not None:
                    received[got["channel"].decode().removeprefix(prefix)].append(got["data"])
            # Someone else's event on alice's channel is not handed to alice's listener
            # (the one after it, alice's own, is: the hub has seen both by then).
            await client.publish(user_channel(prefix, alice), _event(bob, 5))
            await client.publish(user_channel(prefix, alice), _event(alice, 6))
            await listener.done.wait()
    finally:
        await connection.close()
        await hub.stop()
        await watcher.aclose()
        await client.aclose()

    assert received[alice][0] == headed  # forwarded as it came
    assert [e["seq"] for e in event_batches.decode(received[alice][1])] == [3]
    assert [e["seq"] for e in event_batches.decode(received[bob][0])] == [4]
    assert [event["seq"] for event in listener.events] == [1, 2, 3, 6]
