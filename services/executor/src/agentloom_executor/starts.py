"""Group start: the executions one user asks for together are created and started in one
transaction.

Every start of a user's execution takes the user's lock (scheduling.Engine.start: the
running limit is counted exactly), so two starts of one user never overlap anyway. Rather
than have each request take its own transaction and queue on that lock (or, as before,
give up and leave the start to the scheduler: a message hop and a transaction more), the
executions API keeps one transaction per user at a time; what arrives meanwhile waits for
it and goes into the next one, together. Under a burst this is one BEGIN, one lock and one
COMMIT for many executions; a lone request waits for nobody.

A batch whose transaction fails (an idempotency key committed meanwhile) is run again one
execution per transaction, so that only the execution at fault gets the error.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentloom_blocks.sdk import Block
from agentloom_common.bus import Topology
from agentloom_executor import repository
from agentloom_executor.graph import GraphSnapshot
from agentloom_executor.outbox import Outbox
from agentloom_executor.scheduling import Engine, GroupSlots, Limits, lock_user
from agentloom_executor.tables import Execution, OutboxMessage

# Executions started in one transaction at most (the user's lock is held meanwhile).
MAX_BATCH = 100


@dataclass
class _Start:
    # Builds the QUEUED execution: a batch run again one by one starts from fresh rows.
    build: Callable[[], Execution]
    graph: GraphSnapshot
    done: asyncio.Future[Execution] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )
    execution: Execution | None = None


class GroupStarter:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        blocks: Mapping[str, type[Block]],
        topology: Topology,
        limits: Limits,
    ) -> None:
        self._sessions = session_factory
        self._outbox = outbox
        self._blocks = blocks
        self._topology = topology
        self._limits = limits
        self._waiting: dict[str, list[_Start]] = {}
        self._workers: dict[str, asyncio.Task[None]] = {}
        # Transactions committed, and executions they started (tests and metrics read them).
        self.transactions = 0
        self.started = 0

    async def create(
        self, user_id: str, build: Callable[[], Execution], graph: GraphSnapshot
    ) -> Execution:
        """Write the execution `build` gives (QUEUED, of `user_id`) and start it (or park
        it); returns it once committed. Raises what its own transaction raised
        (IntegrityError for an idempotency key taken meanwhile)."""
        start = _Start(build, graph)
        self._waiting.setdefault(user_id, []).append(start)
        if user_id not in self._workers:
            worker = asyncio.create_task(self._work(user_id))
            self._workers[user_id] = worker
        try:
            # Shielded: a caller that gives up (deadline) must not cancel the batch.
            return await asyncio.shield(start.done)
        except asyncio.CancelledError:
            start.done.add_done_callback(lambda done: done.cancelled() or done.exception())
            raise

    async def _work(self, user_id: str) -> None:
        try:
            while waiting := self._waiting.get(user_id):
                batch, self._waiting[user_id] = waiting[:MAX_BATCH], waiting[MAX_BATCH:]
                await self._run(user_id, batch)
        finally:
            self._waiting.pop(user_id, None)
            del self._workers[user_id]

    async def _run(self, user_id: str, batch: list[_Start]) -> None:
        try:
            rows = await self._transaction(user_id, batch)
        except Exception as error:
            if len(batch) == 1:
                _settle(batch[0], error)
                return
            for start in batch:  # one by one: only the one at fault fails
                await self._run(user_id, [start])
            return
        for start in batch:
            _settle(start, None)
        await self._outbox.flush(rows)

    async def _transaction(self, user_id: str, batch: list[_Start]) -> list[OutboxMessage]:
        rows: list[OutboxMessage] = []
        async with self._sessions.begin() as session:
            # The user's lock, held to the commit, then their slots read once for the group:
            # no statement per start, and everything written together at the commit.
            await lock_user(session, user_id)
            group = await GroupSlots.read(session, user_id, self._limits.max_running_per_user)
            for start in batch:
                start.execution = execution = start.build()
                engine = Engine(
                    session, execution, start.graph, self._blocks, self._topology, self._limits
                )
                rows += await engine.start(user_locked=True, group=group)
                group.record(execution)
                # Added once started: written once, in the state the start left it (its
                # QUEUED event is recorded all the same: migration 0010).
                session.add(execution)
            await repository.write_new(session)
        self.transactions += 1
        self.started += len(batch)
        return rows


def _settle(start: _Start, error: BaseException | None) -> None:
    if start.done.done():
        return
    if error is not None:
        start.done.set_exception(error)
    elif start.execution is not None:
        start.done.set_result(start.execution)
