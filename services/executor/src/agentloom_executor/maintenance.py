"""The executor vacuums its own busy tables when their dead rows pile up.

Every event is queued then moved into the log, every node execution and execution is
written several times, and outbox rows are deleted once sent: these tables turn over like
queues (the event log itself only when the relay prunes it). Left to themselves (autovacuum
off, as on the CI machines, or behind), the relay's probes and the running-executions count
walk every dead version since the last vacuum: after bench W1-W3 they were 3,200 buffers
per numbering round and 1,400 per group start, half a core of PostgreSQL under W4. Fresh
tables also have no statistics until an ANALYZE, and their plans are guesses.

So each scheduler looks every `interval_s` at the tables' dead rows (the statistics views:
one read) and runs `VACUUM (ANALYZE, SKIP_LOCKED)` on a table whose dead rows exceed
`min_dead_rows` and a `dead_fraction` of its live ones. With autovacuum on and keeping up
this rarely fires; SKIP_LOCKED leaves a table another vacuum holds alone.
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

log = logging.getLogger(__name__)

SCHEMA = "executor"
# The tables that turn over: rewritten or deleted soon after they are written.
BUSY_TABLES = (
    "event_queue",
    "execution_events",
    "node_executions",
    "executions",
    "outbox",
)

# vacuum_cost_delay for these vacuums: autovacuum's default (with vacuum_cost_limit's 200).
COST_DELAY_MS = 2

_DEAD_ROWS = text(
    """
    SELECT relname, n_dead_tup, n_live_tup FROM pg_stat_user_tables
    WHERE schemaname = :schema AND relname = ANY(:tables)
    """
)


@dataclass(frozen=True)
class MaintenanceOptions:
    interval_s: float = 5.0
    min_dead_rows: int = 2_000
    dead_fraction: float = 0.1


class TableMaintenance:
    def __init__(self, engine: AsyncEngine, options: MaintenanceOptions) -> None:
        # VACUUM cannot run inside a transaction block.
        self._engine = engine.execution_options(isolation_level="AUTOCOMMIT")
        self._options = options
        # Vacuums run, per table (tests and metrics read it).
        self.vacuumed: dict[str, int] = {}

    async def run(self) -> None:
        if self._options.interval_s <= 0:
            return
        while True:
            await asyncio.sleep(self._options.interval_s)
            try:
                await self.once()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.warning("table maintenance failed", exc_info=True)

    async def once(self) -> list[str]:
        """Vacuum the busy tables that need it; returns their names."""
        async with self._engine.connect() as connection:
            rows = (
                await connection.execute(
                    _DEAD_ROWS, {"schema": SCHEMA, "tables": list(BUSY_TABLES)}
                )
            ).all()
            dead_rows = {name: dead for name, dead, live in rows if self._due(dead, live)}
            if not dead_rows:
                return []
            # A manual VACUUM runs unpaced (vacuum_cost_delay 0): one of the events table
            # held a core for ~0.4 s, and bench W4's requests stalled meanwhile.
            await connection.execute(text(f"SET vacuum_cost_delay = {COST_DELAY_MS}"))
            try:
                for name, dead in dead_rows.items():
                    started = time.monotonic()
                    # Names from the fixed list above, never from input.
                    await connection.execute(
                        text(f'VACUUM (ANALYZE, SKIP_LOCKED) "{SCHEMA}"."{name}"')
                    )
                    self.vacuumed[name] = self.vacuumed.get(name, 0) + 1
                    log.info(
                        "vacuumed %s.%s",
                        SCHEMA,
                        name,
                        extra={
                            "fields": {
                                "dead_rows": dead,
                                "seconds": round(time.monotonic() - started, 3),
                            }
                        },
                    )
            finally:
                await connection.execute(text("RESET vacuum_cost_delay"))
        return list(dead_rows)

    def _due(self, dead: int, live: int) -> bool:
        return dead >= self._options.min_dead_rows and dead >= self._options.dead_fraction * live
