"""The event relay: numbers recorded events per execution and publishes them on the bus.

Triggers (migrations 0005, 0015) record an `event_queue` row with every status change and
output, in the changing transaction. Sequence numbers are not given there: concurrent
transactions of one execution (two runners finishing nodes) would commit in another order
than they drew numbers, and a client resuming "after seq 41" would miss a 40 committed
later. The relay gives them instead, to committed rows only, in id order: one relay at a
time (a transaction-level advisory lock) moves a batch of queued events into
`execution_events`, numbered, in one statement, so every execution's events are numbered
1, 2, 3... with no gap, and an event never gets a number below one already handed out.
Each event is written once into the log, which only grows until the prune (issue 8: it
used to be updated twice, numbered then published, and needed a vacuum every few seconds).

Events go out in batches, one message per user per round (`agentloom_common.event_batches`):
a node's life is four or five events, and a message each was most of the bus's work.

Numbering and publishing are separate transactions: numbers are final once committed. The
relay inserts a round's events under its lock, with ids above every earlier round's, so
what has been published is one cursor (`event_relay.published_through`), advanced after
the broker confirmed. A publish that fails (or a relay that dies after publishing) is
retried with the same numbers, so consumers deduplicate by `event_id` =
"<execution id>:<seq>".
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentloom_common import event_batches
from agentloom_common.bus import EVENTS_EXCHANGE, Publisher
from agentloom_common.db import DriverStatement, autocommit_sessions

log = logging.getLogger(__name__)

# Any constant: only relays take this lock.
RELAY_LOCK = 0x6167_6C6F_6F6D_6576

# Events of executions that do not exist (no foreign key, migration 0008) leave the queue
# unnumbered: nobody could be told about them. Executions are read, not locked: the
# counters are the relay's own (migration 0016), so a runner holding an execution's row
# holds up no event.
NUMBER = DriverStatement.of(
    text(
        """
    WITH taken AS (
        DELETE FROM executor.event_queue WHERE id IN (
            SELECT id FROM executor.event_queue ORDER BY id LIMIT :batch
        )
        RETURNING id, execution_id, type, data, created_at
    ), numbered AS (
        SELECT taken.*, row_number() OVER (PARTITION BY execution_id ORDER BY id) AS rn
        FROM taken
    ), counts AS (
        SELECT t.execution_id, count(*) AS n FROM taken AS t
        WHERE EXISTS (SELECT FROM executor.executions AS x WHERE x.id = t.execution_id)
        GROUP BY t.execution_id
    ), bumped AS (
        INSERT INTO executor.event_counters AS c (execution_id, last_seq)
        SELECT execution_id, n FROM counts
        ON CONFLICT (execution_id) DO UPDATE SET last_seq = c.last_seq + excluded.last_seq
        RETURNING c.execution_id, c.last_seq
    )
    INSERT INTO executor.execution_events (execution_id, seq, type, data, created_at)
    SELECT n.execution_id, b.last_seq - k.n + n.rn, n.type, n.data, n.created_at
    FROM numbered AS n
    JOIN counts AS k ON k.execution_id = n.execution_id
    JOIN bumped AS b ON b.execution_id = n.execution_id
    ORDER BY n.id
    """
    )
)

# The event as published, replayed and pushed: one shape everywhere, built by PostgreSQL
# as JSON text (the relay sends it as it comes, without decoding and encoding it again).
DOCUMENT = """
    json_build_object(
        'event_id', e.execution_id::text || ':' || e.seq,
        'type', e.type,
        'seq', e.seq,
        'user_id', x.user_id,
        'graph_id', x.graph_id,
        'graph_version', x.graph_version,
        'graph_exec_id', e.execution_id,
        'created_at', to_char(e.created_at AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        'data', e.data
    )::text AS document
"""

PUBLISHED_THROUGH = "(SELECT published_through FROM executor.event_relay)"

# Left join: an execution deleted since its events were numbered is skipped, not waited for.
UNPUBLISHED = DriverStatement.of(
    text(
        f"""
        SELECT e.id, e.execution_id, e.seq, e.type, x.user_id, {DOCUMENT}
        FROM executor.execution_events AS e
        LEFT JOIN executor.executions AS x ON x.id = e.execution_id
        WHERE e.id > {PUBLISHED_THROUGH}
        ORDER BY e.id LIMIT :batch
        """
    )
)

WAITING = DriverStatement.of(
    text(
        f"""
        SELECT EXISTS (SELECT FROM executor.event_queue)
            OR EXISTS (SELECT FROM executor.execution_events WHERE id > {PUBLISHED_THROUGH})
        """
    )
)

ADVANCE = DriverStatement.of(
    text(
        "UPDATE executor.event_relay SET published_through = :through "
        "WHERE published_through < :through"
    )
)

RELAY_TRY_LOCK = DriverStatement.of(text("SELECT pg_try_advisory_xact_lock(:key)"))

# The oldest published rows by id (ids grow with time), of which those recorded before the
# cutoff: no index on created_at to maintain for every event (migration 0014).
PRUNE = text(
    f"""
    DELETE FROM executor.execution_events
    WHERE id IN (
        SELECT id FROM executor.execution_events WHERE id <= {PUBLISHED_THROUGH}
        ORDER BY id LIMIT 5000
    ) AND created_at < :before
    """
)

REPLAY = text(
    f"""
    SELECT {DOCUMENT}
    FROM executor.execution_events AS e
    JOIN executor.executions AS x ON x.id = e.execution_id
    WHERE e.execution_id = :execution_id AND e.seq > :after_seq
    ORDER BY e.seq LIMIT :limit
    """
)


async def replay(
    session: AsyncSession, *, execution_id: str, after_seq: int, limit: int
) -> list[dict[str, Any]]:
    result = await session.execute(
        REPLAY, {"execution_id": execution_id, "after_seq": after_seq, "limit": limit}
    )
    return [json.loads(row.document) for row in result]


async def first_seq(session: AsyncSession, execution_id: str) -> int:
    result = await session.execute(
        text(
            "SELECT coalesce(min(seq), 0) FROM executor.execution_events "
            "WHERE execution_id = :execution_id"
        ),
        {"execution_id": execution_id},
    )
    return int(result.scalar_one())


class EventRelay:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        publisher: Publisher,
        *,
        poll_interval_s: float,
        retention_s: float,
        batch: int = 500,
    ) -> None:
        self._sessions = sessions
        # The probe that runs every poll is one statement: no BEGIN and ROLLBACK around it.
        self._probes = autocommit_sessions(sessions)
        self._publisher = publisher
        self._poll_interval_s = poll_interval_s
        self._retention = timedelta(seconds=retention_s)
        self._batch = batch
        self._last_prune = datetime.min.replace(tzinfo=UTC)
        self._last_round_had_events = False

    async def run(self) -> None:
        """Round after round: at once while batches are full, at the poll interval while
        events come, slowing to 5x that after a quiet second (an idle platform polls less)."""
        pause = self._poll_interval_s
        quiet_since = asyncio.get_running_loop().time()
        while True:
            try:
                busy = await self.tick()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("event relay tick failed")
                busy = False
            now = asyncio.get_running_loop().time()
            if self._last_round_had_events:
                quiet_since = now
            pause = self._poll_interval_s * (5 if now - quiet_since > 1.0 else 1)
            if not busy:
                await asyncio.sleep(pause)

    async def tick(self) -> bool:
        """One round; True when a full batch was handled (more may be waiting)."""
        # The relay polls often: while nothing waits, two index probes are all a round costs.
        async with self._probes() as session:
            waiting = await WAITING.fetchrow(session, {})
        self._last_round_had_events = bool(waiting[0])
        if not waiting[0]:
            await self._prune()
            return False
        async with self._sessions.begin() as session:
            if not await _relay_lock(session):
                return False
            numbered = await NUMBER.execute(session, {"batch": self._batch})
        async with self._sessions.begin() as session:
            if not await _relay_lock(session):
                return False
            rows = await UNPUBLISHED.fetch(session, {"batch": self._batch})
            if rows:
                await self._publish([row for row in rows if row["user_id"] is not None])
                await ADVANCE.execute(session, {"through": rows[-1]["id"]})
        await self._prune()
        return max(numbered, len(rows)) >= self._batch

    async def _publish(self, rows: Sequence[Any]) -> None:
        """The round's events grouped by user (the `user_id` header), in order, a message
        per batch (its types in the `event_types` header and the routing key)."""
        groups: dict[str, list[Any]] = {}
        for row in rows:
            groups.setdefault(row["user_id"], []).append(row)
        publishes = []
        for user_id, grouped in groups.items():
            first = 0
            for chunk in event_batches.chunks([row["document"].encode() for row in grouped]):
                batch = grouped[first : first + len(chunk)]
                first += len(chunk)
                kinds = [row["type"] for row in batch]
                # Unique per batch; consumers deduplicate by each event's `event_id`.
                message_id = f"{batch[0]['execution_id']}:{batch[0]['seq']}+{len(chunk)}"
                publishes.append(
                    self._publisher.publish(
                        EVENTS_EXCHANGE,
                        event_batches.routing_key(kinds),
                        event_batches.encode(chunk),
                        message_id=message_id,
                        headers={
                            event_batches.OWNER: user_id,
                            event_batches.TYPES: event_batches.types_header(kinds),
                        },
                    )
                )
        await asyncio.gather(*publishes)

    async def _prune(self) -> None:
        now = datetime.now(UTC)
        if now - self._last_prune < timedelta(minutes=1):
            return
        self._last_prune = now
        async with self._sessions.begin() as session:
            await session.execute(PRUNE, {"before": now - self._retention})


async def _relay_lock(session: AsyncSession) -> bool:
    row = await RELAY_TRY_LOCK.fetchrow(session, {"key": RELAY_LOCK})
    return bool(row[0])
