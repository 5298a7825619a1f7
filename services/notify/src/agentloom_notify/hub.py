"""Fan-out of live events across notify replicas, through Redis.

The bus gives each batch of events to ONE notify replica (a shared queue: `Relay`), which
publishes it on the owner's Redis channel (as it came: a batch names its owner). Every
replica listens (`Hub`) only on the channels of users with a WebSocket open on it, so a
replica never even receives other users' events (the reference product subscribed every
instance to everything). Redis pub/sub may drop messages
while a replica reconnects; connections then catch up from the executor's replay (`on_gap`),
so the channel is a fast path, never the record.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Callable
from typing import Any, Protocol

import redis.asyncio as redis
from aio_pika.abc import AbstractChannel, AbstractIncomingMessage

from agentloom_common import event_batches
from agentloom_common.bus import NOTIFY_EVENTS_QUEUE, PoisonMessage, consume

log = logging.getLogger(__name__)


def user_channel(prefix: str, user_id: str) -> str:
    return f"{prefix}{user_id}"


class Relay:
    """Bus -> Redis: publish each event on its owner's channel, ack once published."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix

    async def start(self, channel: AbstractChannel) -> None:
        await consume(channel, NOTIFY_EVENTS_QUEUE, self._handle)

    async def _handle(self, message: AbstractIncomingMessage) -> None:
        """A batch that names its owner (`event_batches.OWNER`) goes to that user's channel
        as it came, unparsed; one that does not is parsed and sent a batch per owner."""
        user_id = event_batches.owner(message.headers)
        if user_id is not None:
            await self._redis.publish(user_channel(self._prefix, user_id), message.body)
            return
        try:
            events = event_batches.decode(message.body)
            by_owner: dict[str, list[bytes]] = {}
            for event in events:
                document = json.dumps(event, separators=(",", ":")).encode()
                by_owner.setdefault(str(event["user_id"]), []).append(document)
        except (event_batches.NotEvents, KeyError) as error:
            raise PoisonMessage(f"not an event: {error}") from error
        # One Redis round trip for all of them.
        async with self._redis.pipeline(transaction=False) as pipe:
            for owner, documents in by_owner.items():
                pipe.publish(user_channel(self._prefix, owner), event_batches.encode(documents))
            await pipe.execute()


class Listener(Protocol):
    def offer(self, event: dict[str, Any]) -> None:
        """An event of this listener's user, live (maybe out of order, maybe repeated)."""
        ...

    def resync(self) -> None:
        """Live events may have been missed: catch up from the replay."""
        ...


class Hub:
    """Redis -> the WebSocket connections of this replica, by user."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self._redis = client
        self._prefix = prefix
        self._listeners: dict[str, set[Listener]] = {}
        self._pubsub: Any = None
        self._task: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run())
        await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            try:
                await self._task
            except asyncio.CancelledError:
                pass

    async def add(self, user_id: str, listener: Listener) -> None:
        listeners = self._listeners.setdefault(user_id, set())
        listeners.add(listener)
        if len(listeners) == 1 and self._pubsub is not None:
            await self._pubsub.subscribe(user_channel(self._prefix, user_id))

    async def remove(self, user_id: str, listener: Listener) -> None:
        listeners = self._listeners.get(user_id)
        if listeners is None:
            return
        listeners.discard(listener)
        if not listeners:
            del self._listeners[user_id]
            if self._pubsub is not None:
                try:
                    await self._pubsub.unsubscribe(user_channel(self._prefix, user_id))
                except Exception:  # reconnecting: the new subscription will not include it
                    log.debug("unsubscribe failed", exc_info=True)

    async def _run(self) -> None:
        backoff = 0.1
        first = True
        while True:
            try:
                pubsub = self._redis.pubsub(ignore_subscribe_messages=True)
                # Always subscribed to something, so listening never returns at once.
                await pubsub.subscribe(f"{self._prefix}~control")
                # Set first: a user added from now on subscribes itself; earlier ones here.
                self._pubsub = pubsub
                channels = [user_channel(self._prefix, user) for user in self._listeners]
                if channels:
                    await pubsub.subscribe(*channels)
                self._ready.set()
                if not first:
                    self._each(lambda listener: listener.resync())
                first = False
                backoff = 0.1
                async for message in pubsub.listen():
                    self._dispatch(message)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("redis subscription lost; reconnecting in %.1fs", backoff)
                self._pubsub = None
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    def _dispatch(self, message: dict[str, Any]) -> None:
        if message.get("type") != "message":
            return
        # The channel is the user's; each event's own owner is checked again all the same.
        channel = message.get("channel")
        if isinstance(channel, bytes):
            channel = channel.decode()
        try:
            events = event_batches.decode(message["data"])
        except (event_batches.NotEvents, KeyError, TypeError):
            log.warning("dropping a malformed event from redis")
            return
        for event in events:
            user_id = str(event.get("user_id"))
            if channel != user_channel(self._prefix, user_id):
                continue
            for listener in list(self._listeners.get(user_id, ())):
                listener.offer(event)

    def _each(self, action: Callable[[Listener], None]) -> None:
        for listeners in list(self._listeners.values()):
            for listener in list(listeners):
                action(listener)
