"""Event intake: every event on the bus becomes one pending delivery per matching endpoint.

A message carries a batch of events (or one); a batch is recorded in one transaction.

Consumed from the quorum queue `agentloom.events.webhooks` (bound to every event type) with a
manual ack after the deliveries are committed; a redelivered message finds them already there
(UNIQUE(endpoint_id, event_id)) and adds nothing. A message that is not an event is
dead-lettered at once.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from aio_pika.abc import AbstractIncomingMessage
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentloom_common import event_batches
from agentloom_common.bus import PoisonMessage
from agentloom_common.db import autocommit_sessions
from agentloom_notify.webhooks import repository
from agentloom_notify.webhooks.repository import Event

log = logging.getLogger(__name__)

MAX_ID_LENGTH = 256


def parse_event(body: bytes) -> Event:
    """The one event a bus message carries; `PoisonMessage` when it is not exactly one."""
    events = parse_events(body)
    if len(events) != 1:
        raise PoisonMessage(f"expected one event, found {len(events)}")
    return events[0]


def parse_events(body: bytes) -> list[Event]:
    """The events a bus message carries (a batch or a lone event); `PoisonMessage` when
    it carries something else."""
    try:
        documents = event_batches.decode(body)
    except event_batches.NotEvents as error:
        raise PoisonMessage(str(error)) from None
    return [_event(document) for document in documents]


def _event(document: dict[str, Any]) -> Event:
    fields = {}
    for name in ("event_id", "type", "user_id"):
        value = document.get(name)
        if not isinstance(value, str) or not value or len(value) > MAX_ID_LENGTH:
            raise PoisonMessage(f"the event has no valid {name!r}")
        fields[name] = value
    # The body every endpoint receives, byte for byte on every attempt.
    payload = json.dumps(document, separators=(",", ":"), ensure_ascii=False)
    return Event(fields["event_id"], fields["type"], fields["user_id"], payload)


class EventIntake:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], on_new: Callable[[], None]
    ) -> None:
        # Autocommit: a batch is one read of its users' endpoints and, when any wants one
        # of its events, one INSERT (atomic on its own). Most users have no endpoint, so the
        # usual batch is one round trip rather than BEGIN, SELECT, COMMIT: the intake runs
        # for every event batch of the platform (profiled under bench W1).
        self._sessions = autocommit_sessions(sessions)
        self._on_new = on_new

    async def handle(self, message: AbstractIncomingMessage) -> None:
        """The bus handler (`agentloom_common.bus.consume` acks after it returns). A batch
        that names its owner is parsed only if that user has an endpoint wanting one of its
        types (most have none: the batch then costs one read, no parsing)."""
        owner = event_batches.owner(message.headers)
        kinds = event_batches.types(message.headers) or [str(message.routing_key or "")]
        async with self._sessions() as session:
            if owner is not None and not await repository.wants_events(session, owner, kinds):
                return
            events = parse_events(message.body)
            created = await repository.record_events(session, events, now=datetime.now(UTC))
        if created:
            self._on_new()
