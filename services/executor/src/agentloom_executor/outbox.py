"""Transactional outbox: messages are rows committed with the state change that implies them,
published (with confirms) right after the commit, and re-sent by a relay if that failed.

This is what makes "accepted" mean "never lost" (G1): the process may die between the commit
and the publish, and the relay in any surviving process of the executor sends the message.
Consumers are idempotent, so a message sent twice is harmless.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentloom_common.bus import (
    CONTROL_EXCHANGE,
    JOBS_EXCHANGE,
    JOBS_ROUTING_KEY,
    SCHEDULER_EXCHANGE,
    Publisher,
    Topology,
)
from agentloom_common.db import DriverStatement, autocommit_sessions
from agentloom_common.messages import Envelope
from agentloom_executor.tables import OutboxMessage

log = logging.getLogger(__name__)

# One statement text whatever the batch's size (an `IN (...)` list is a new statement per
# length: under load each batch was parsed and planned again, and churned the connection's
# prepared statement cache), in autocommit: no BEGIN and COMMIT around it.
_DELETE_PUBLISHED = DriverStatement.of(
    text("DELETE FROM executor.outbox WHERE id = ANY(CAST(:ids AS bigint[]))")
)

# Rows due for a re-send, claimed for another retry delay (see `Outbox.relay_once`).
_CLAIM = DriverStatement.of(
    text(
        """
        UPDATE executor.outbox SET created_at = :now
        WHERE id IN (
            SELECT id FROM executor.outbox WHERE created_at < :cutoff
            ORDER BY id LIMIT :limit FOR UPDATE SKIP LOCKED
        )
        RETURNING id, exchange, routing_key, message_id, body, mandatory
        """
    )
)


def _row(exchange: str, routing_key: str, message: Envelope, mandatory: bool) -> OutboxMessage:
    return OutboxMessage(
        exchange=exchange,
        routing_key=routing_key,
        message_id=message.message_id,
        body=message.model_dump_json().encode(),
        mandatory=mandatory,
        created_at=datetime.now(UTC),
    )


def to_scheduler(topology: Topology, execution_id: str, message: Envelope) -> OutboxMessage:
    key = topology.partition_key(topology.partition_of(execution_id))
    return _row(SCHEDULER_EXCHANGE, key, message, True)


def to_runners(message: Envelope) -> OutboxMessage:
    return _row(JOBS_EXCHANGE, JOBS_ROUTING_KEY, message, True)


def to_control(message: Envelope) -> OutboxMessage:
    # A fanout to whichever runners are connected: none connected is not an error.
    return _row(CONTROL_EXCHANGE, "", message, False)


class Outbox:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        publisher: Publisher,
        *,
        retry_after_s: float,
        poll_interval_s: float,
    ) -> None:
        self._sessions = session_factory
        self._single = autocommit_sessions(session_factory)
        self._publisher = publisher
        self._retry_after = timedelta(seconds=retry_after_s)
        self._poll_interval_s = poll_interval_s
        self._in_flight: set[asyncio.Task[None]] = set()
        self._confirmed: list[int] = []
        self._deleter: asyncio.Task[None] | None = None

    async def flush(self, rows: Sequence[OutboxMessage]) -> None:
        """Publish rows just committed, without waiting for the broker's confirms.

        The rows are committed, so the caller may ack its own message at once: if a publish
        is not confirmed, the row stays and the relay re-sends it. Confirmed rows are
        deleted in batches. Keeping confirms and deletes off the caller's path saves a
        broker round trip and a commit per message on the hot path."""
        if not rows:
            return
        task = asyncio.create_task(self._publish_rows(list(rows)))
        self._in_flight.add(task)
        task.add_done_callback(self._in_flight.discard)

    async def _publish_rows(self, rows: list[OutboxMessage]) -> None:
        results = await asyncio.gather(
            *(self._publish(row) for row in rows), return_exceptions=True
        )
        for row, result in zip(rows, results, strict=True):
            if isinstance(result, BaseException):
                log.warning("publish failed (%s); the relay will re-send", type(result).__name__)
            else:
                self._confirmed.append(row.id)
        if self._confirmed and (self._deleter is None or self._deleter.done()):
            self._deleter = asyncio.create_task(self._delete_confirmed())

    async def _delete_confirmed(self) -> None:
        # A short pause gathers the confirms of a burst into one DELETE.
        await asyncio.sleep(0.02)
        while self._confirmed:
            batch, self._confirmed = self._confirmed, []
            try:
                async with self._single() as session:
                    await _DELETE_PUBLISHED.execute(session, {"ids": batch})
            except Exception:
                # Left in place, the rows are re-sent by the relay: harmless, consumers are
                # idempotent.
                log.warning("could not delete published outbox rows", exc_info=True)

    async def drain(self, timeout_s: float = 5.0) -> None:
        """Wait for publishes in flight and their deletes (on shutdown, and in tests)."""
        pending = [*self._in_flight, *([self._deleter] if self._deleter else [])]
        if pending:
            await asyncio.wait(pending, timeout=timeout_s)
        if self._deleter is not None and not self._deleter.done():
            await asyncio.wait([self._deleter], timeout=timeout_s)

    async def relay_once(self, limit: int = 200) -> int:
        """Re-send rows older than the retry delay; returns how many were published.

        The rows are claimed first, in a statement of their own, by moving their time to
        now (another relay takes them only after another retry delay), then published
        together, and those confirmed deleted: no transaction stays open while the broker
        confirms. One that did (select for update, publish and delete one by one) lasted
        16 s under bench W2-W3, and held back every vacuum of the database meanwhile."""
        now = datetime.now(UTC)
        async with self._single() as session:
            rows = await _CLAIM.fetch(
                session, {"now": now, "cutoff": now - self._retry_after, "limit": limit}
            )
        if not rows:
            return 0
        rows = sorted(rows, key=lambda row: int(row["id"]))
        results = await asyncio.gather(
            *(
                self._publisher.publish(
                    row["exchange"],
                    row["routing_key"],
                    bytes(row["body"]),
                    message_id=row["message_id"],
                    mandatory=row["mandatory"],
                )
                for row in rows
            ),
            return_exceptions=True,
        )
        sent = [row["id"] for row, result in zip(rows, results, strict=True) if result is None]
        if len(sent) < len(rows):
            log.warning(
                "relay: %d of %d publishes failed; retried later", len(rows) - len(sent), len(rows)
            )
        if sent:
            async with self._single() as session:
                await _DELETE_PUBLISHED.execute(session, {"ids": sent})
        return len(sent)

    async def run_relay(self) -> None:
        """Loop forever (until cancelled), re-sending what was left behind."""
        while True:
            try:
                await self.relay_once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("outbox relay pass failed", exc_info=True)
            await asyncio.sleep(self._poll_interval_s)

    async def _publish(self, row: OutboxMessage) -> None:
        await self._publisher.publish(
            row.exchange,
            row.routing_key,
            row.body,
            message_id=row.message_id,
            mandatory=row.mandatory,
        )
