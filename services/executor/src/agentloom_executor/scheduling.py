"""The data-flow engine, applied to one execution inside one transaction.

The scheduler calls these with the execution row locked, so results of one execution are
applied one at a time, and applying the same result twice is a no-op (`applied` flag).
Semantics (shared/reference/autogpt-semantics.md):

- each yielded (pin, value) travels along every link from that pin (a source path such as
  `x_$_0` selects inside the value; a link whose path selects nothing carries nothing);
- a waiting node execution collects one value per linked pin and runs once every linked pin
  has one (links override defaults; path pins such as `values_#_k` assemble into `values`);
- a value arriving on a pin already filled goes to the next waiting node execution, or a new
  one, so N values on a pin give N runs of the sink;
- a static link (or a link from a block with static output) keeps its last value and gives
  it to every waiting and later run of the sink;
- a failed node yields `error`; if that pin is wired the failure is handled, otherwise the
  execution fails at once (running work is interrupted, queued work dropped);
- the execution completes when nothing is queued, running, or finished-but-not-applied.
"""

from __future__ import annotations

import bisect
import uuid
from collections import defaultdict, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Select,
    bindparam,
    func,
    inspect,
    literal_column,
    select,
    text,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncSession

from agentloom_blocks.sdk import ERROR_PIN, Block, BlockKind
from agentloom_common.bus import Topology
from agentloom_common.db import DriverStatement
from agentloom_executor import outbox, pins, repository
from agentloom_executor.graph import GraphSnapshot, LinkSpec, NodeSpec, ready_inputs, starting_nodes
from agentloom_executor.messages import ExecutionRequested, NodeJob
from agentloom_executor.status import Status
from agentloom_executor.tables import Execution, NodeExecution, OutboxMessage

OUTPUT_PIN = "output"


@dataclass(frozen=True)
class Limits:
    max_node_executions: int = 10_000
    execution_timeout_s: float = 3600.0
    max_running_per_user: int = 8


# Node executions one runner keeps to run itself from one result (the rest go out as jobs).
MAX_KEPT = 1000


class LimitReached(Exception):
    pass


class Engine:
    """One transaction's worth of scheduling for one (locked) execution."""

    def __init__(
        self,
        session: AsyncSession,
        execution: Execution,
        graph: GraphSnapshot,
        blocks: Mapping[str, type[Block]],
        topology: Topology,
        limits: Limits,
    ) -> None:
        self.session = session
        self.execution = execution
        self.graph = graph
        self.blocks = blocks
        self.topology = topology
        self.limits = limits
        self.rows: list[OutboxMessage] = []
        self.queued = 0
        # Set by a runner applying many results in one transaction: it asks whether the
        # execution is complete once, at the end (`complete_if_done`), not after each.
        self.defer_completion = False
        # Set by a runner that runs what its result queues itself (eager local chaining):
        # node executions created and queued here are kept out of the session, no job is
        # sent for them, and the runner writes each once it knows what became of it. The
        # first one is kept whatever its block; later ones only when `keep` accepts them.
        self.keep: Callable[[NodeExecution], bool] | None = None
        self.kept: deque[NodeExecution] = deque()
        # Kept node executions the runner finished here, not in the session: written in one
        # statement before anything reads node executions (`write_finished`).
        self.finished: list[NodeExecution] = []

    async def write_finished(self) -> None:
        """Write the finished kept node executions (counts and queries must see them)."""
        if self.finished:
            nodes, self.finished = self.finished, []
            await repository.write_finished(self.session, nodes)

    async def write_finished_and_tally(self) -> repository.Tally:
        """`write_finished`, and the execution's tally right after, in one round trip."""
        nodes, self.finished = self.finished, []
        return await repository.write_finished_and_tally(self.session, self.execution.id, nodes)

    def _new_node_execution(
        self, node: NodeSpec, status: Status, inputs: dict[str, Any]
    ) -> NodeExecution:
        execution = self.execution
        if execution.node_execution_total >= self.limits.max_node_executions:
            raise LimitReached(f"node execution limit reached ({self.limits.max_node_executions})")
        execution.node_execution_total += 1
        node_execution = NodeExecution(
            id=uuid.uuid4(),
            execution_id=execution.id,
            node_id=node.id,
            block_id=node.block_id,
            status=status.value,
            inputs=inputs,
            config=node.config,
            attempt=0,
            cost=0,
            applied=False,
            created_at=repository.now(),
        )
        self.session.add(node_execution)
        if status is Status.QUEUED:
            self._dispatch(node_execution)
        return node_execution

    def _dispatch(self, node_execution: NodeExecution) -> None:
        node_execution.dispatched_at = repository.now()
        self.queued += 1
        if (
            self.keep is not None
            and len(self.kept) < MAX_KEPT
            and (not self.kept or self.keep(node_execution))
            and inspect(node_execution).pending
        ):
            # Not written yet: the runner writes it once, in the state it leaves it in.
            self.session.expunge(node_execution)
            self.kept.append(node_execution)
            return
        self.rows.append(self._job(node_execution))

    def _job(self, node_execution: NodeExecution) -> OutboxMessage:
        return outbox.to_runners(
            NodeJob(
                execution_id=str(self.execution.id),
                node_execution_id=str(node_execution.id),
                block_id=node_execution.block_id,
            )
        )

    def release(self, node_execution: NodeExecution) -> None:
        """A kept node execution the runner will not run after all: written QUEUED, with
        its job, as if it had never been kept."""
        self.session.add(node_execution)
        row = self._job(node_execution)
        self.session.add(row)
        self.rows.append(row)

    async def start(
        self, *, user_locked: bool = False, group: GroupSlots | None = None
    ) -> list[OutboxMessage]:
        """QUEUED -> RUNNING and queue the starting nodes, unless the user is at their limit
        of running executions or an older execution of theirs waits for a slot: it is then
        parked (stays QUEUED) until the end of a running one asks for it. `user_locked`:
        this transaction holds the user's lock already (a group start); `group`: the
        user's slots as read once for the group, rather than a statement per start."""
        execution = self.execution
        if execution.status != Status.QUEUED.value:
            return []
        if execution.parent_node_execution_id is None:
            # Executions of one user run at most `max_running_per_user` at once, oldest
            # first: this one starts only if the slots left cover every older one still
            # waiting (requests reach the partitions in any order). Only a parked one needs
            # asking for: one whose own request is on its way starts when that arrives.
            limit = self.limits.max_running_per_user
            if not user_locked:
                await lock_user(self.session, execution.user_id)
            if group is not None:
                slots = group.slots(execution)
            else:
                slots = await _slots(self.session, execution, limit)
            if slots.running + slots.ahead >= limit and slots.running:
                # About to park: count again the running ones that are still running once
                # any ending at this moment has committed (see `request_next_waiting`).
                slots = replace(slots, running=await _still_running(self.session, execution))
            if slots.running + slots.ahead >= limit:
                execution.parked = True
                if slots.older_parked is not None and slots.running < limit:
                    self.request(slots.older_parked)
                return await self._flush()
            if slots.other_parked is not None and slots.running + 1 < limit:
                self.request(slots.other_parked)
        execution.parked = False
        execution.status = Status.RUNNING.value
        execution.started_at = repository.now()
        execution.deadline_at = execution.started_at + timedelta(
            seconds=self.limits.execution_timeout_s
        )
        try:
            for node, inputs in starting_nodes(self.graph, self.blocks, execution.inputs):
                self._new_node_execution(node, Status.QUEUED, inputs)
        except LimitReached as error:
            return await self.end(Status.FAILED, str(error))
        if not self.queued:
            return await self.end(Status.COMPLETED)
        return await self._flush()

    async def apply_finished(
        self, node_execution: NodeExecution, *, stored_applied: bool = False
    ) -> list[OutboxMessage]:
        """Pass a finished node execution's outputs along its links, then end the execution
        if it failed unhandled or if nothing is left to run. `stored_applied`: the caller
        stored the result marked applied in this transaction (the runner), so it is new."""
        execution = self.execution
        if execution.status != Status.RUNNING.value:
            return []
        if node_execution.applied and not stored_applied:
            return []
        if node_execution.status not in (Status.COMPLETED.value, Status.FAILED.value):
            return []
        node_execution.applied = True
        self.queued = 0
        outputs = node_execution.outputs or []
        sinks = {
            link.sink_id
            for pin, _ in outputs
            for link in self.graph.links_from(node_execution.node_id, pin)
        }
        # Runs waiting for more values exist only for nodes fed on several pins.
        if any(self.graph.may_wait(sink) for sink in sinks):
            await self.write_finished()  # in creation order (`seq`) before those it reads
            waiting = await _waiting_by_node(self.session, execution.id)
        else:
            waiting = defaultdict(list)
        try:
            for pin, value in node_execution.outputs or []:
                self._record_graph_output(node_execution, pin, value)
                for link in self.graph.links_from(node_execution.node_id, pin):
                    try:
                        selected = pins.select(value, link.source_steps)
                    except pins.Missing:
                        continue
                    self._deliver(link, selected, waiting)
        except LimitReached as limit:
            await self._flush()
            return await self.end(Status.FAILED, str(limit))
        await self._flush()
        # A failure is handled only when an error value actually left along a wired pin.
        handled = any(pin == ERROR_PIN for pin, _ in node_execution.outputs or []) and bool(
            self.graph.links_from(node_execution.node_id, ERROR_PIN)
        )
        unhandled = node_execution.status == Status.FAILED.value and not handled
        if unhandled:
            error = f"node {node_execution.node_id!r} failed: {node_execution.error}"
            return await self.end(Status.FAILED, error)
        # Something queued now is still to come: no need to count.
        if not self.queued and not self.defer_completion:
            return await self.complete_if_done()
        return self.rows

    async def complete_if_done(self, tally: repository.Tally | None = None) -> list[OutboxMessage]:
        """End the execution COMPLETED when nothing is left to run. `tally`: the caller
        counted in this transaction and nothing changed since."""
        if self.execution.status != Status.RUNNING.value:
            return self.rows
        if tally is None:
            await self.write_finished()
            tally = await repository.node_tally(self.session, self.execution.id)
        if tally.active == 0:
            return await self.end(Status.COMPLETED, tally=tally)
        return self.rows

    def _deliver(
        self, link: LinkSpec, value: Any, waiting: defaultdict[str, list[NodeExecution]]
    ) -> None:
        sink = self.graph.nodes[link.sink_id]
        if self._is_static(link):
            statics = dict(self.execution.static_values)
            statics[sink.id] = {**statics.get(sink.id, {}), link.sink_name: value}
            self.execution.static_values = statics
            targets = list(waiting[sink.id])
            if not targets:
                targets = [self._waiting(sink, waiting)]
            for target in targets:
                self._fill(sink, target, link.sink_name, value, waiting)
            return
        free = next((w for w in waiting[sink.id] if link.sink_name not in w.inputs), None)
        target = free if free is not None else self._waiting(sink, waiting)
        self._fill(sink, target, link.sink_name, value, waiting)

    def _waiting(
        self, sink: NodeSpec, waiting: defaultdict[str, list[NodeExecution]]
    ) -> NodeExecution:
        """A new waiting node execution, given the sink's static values so far."""
        statics = dict(self.execution.static_values.get(sink.id, {}))
        target = self._new_node_execution(sink, Status.INCOMPLETE, statics)
        waiting[sink.id].append(target)
        return target

    def _fill(
        self,
        sink: NodeSpec,
        target: NodeExecution,
        pin: str,
        value: Any,
        waiting: defaultdict[str, list[NodeExecution]],
    ) -> None:
        target.inputs = {**target.inputs, pin: value}
        merged = ready_inputs(self.graph, sink.id, target.inputs)
        if merged is not None:
            target.inputs = merged
            target.status = Status.QUEUED.value
            waiting[sink.id].remove(target)
            self._dispatch(target)

    def _is_static(self, link: LinkSpec) -> bool:
        if link.is_static:
            return True
        source = self.graph.nodes.get(link.source_id)
        block = self.blocks.get(source.block_id) if source else None
        return bool(getattr(block, "static_output", False))

    def _record_graph_output(self, node_execution: NodeExecution, pin: str, value: Any) -> None:
        block = self.blocks.get(node_execution.block_id)
        node = self.graph.nodes.get(node_execution.node_id)
        if block is None or node is None or block.kind is not BlockKind.OUTPUT:
            return
        if pin != OUTPUT_PIN:
            return
        name = block.graph_io_name(node.input_default) or OUTPUT_PIN
        outputs = dict(self.execution.outputs)
        outputs[name] = [*outputs.get(name, []), value]
        self.execution.outputs = outputs

    async def end(
        self, status: Status, error: str | None = None, *, tally: repository.Tally | None = None
    ) -> list[OutboxMessage]:
        await self.write_finished()
        await self._flush()
        self.rows += await repository.end_execution(
            self.session,
            self.execution,
            status,
            self.topology,
            error=error,
            tally=tally,
            may_have_children=self._may_have_children(),
        )
        await self._after_end()
        return self.rows

    def _may_have_children(self) -> bool:
        """Whether a node of this graph can start a child execution (a sub-agent)."""
        for node in self.graph.nodes.values():
            block = self.blocks.get(node.block_id)
            if block is None or getattr(block, "runs_graph", False):
                return True
        return False

    async def _after_end(self) -> list[OutboxMessage]:
        """A slot freed: ask the scheduler to start the user's oldest parked execution."""
        rows = await request_next_waiting(self.session, self.topology, self.execution)
        self.rows += rows
        return rows

    def request(self, execution_id: uuid.UUID) -> list[OutboxMessage]:
        """Ask the execution's scheduler to start it (`execution.requested`)."""
        row = outbox.to_scheduler(
            self.topology, str(execution_id), ExecutionRequested(execution_id=str(execution_id))
        )
        self.session.add(row)
        self.rows.append(row)
        return [row]

    async def _flush(self) -> list[OutboxMessage]:
        """Stage the outbox rows; they are written with the rest at the next query or at
        commit (a flush per applied result was a round trip per node)."""
        self.session.add_all(self.rows)
        return self.rows


async def request_next_waiting(
    session: AsyncSession, topology: Topology, execution: Execution
) -> list[OutboxMessage]:
    """After `execution` ended (in the scheduler, a runner, or a stop): its user's oldest
    parked execution may start now.

    No user lock here (it made every end wait for the user's starts in flight, and the
    executions API holds it for a whole group of starts: ~110 ms per end under bench W2
    and W4, with the execution row locked meanwhile). A start that would park instead
    locks the running executions it counted (`_still_running`), so with this execution's
    status written first (the read below flushes it) one of two things happens: the start
    locked the row first, this UPDATE waits for the start's commit and the read below
    then sees what it parked; or this UPDATE came first, the start waits for this commit
    and no longer counts this execution, so it starts rather than parks."""
    if execution.parent_node_execution_id is not None:
        return []
    found = await _OLDEST_PARKED.fetchrow(session, {"user": execution.user_id})
    if found is None:
        return []
    waiting_id = found[0]
    row = outbox.to_scheduler(
        topology, str(waiting_id), ExecutionRequested(execution_id=str(waiting_id))
    )
    session.add(row)
    return [row]


def _in(status: Status) -> ColumnElement[bool]:
    """`status = '<status>'` with the value in the SQL text, not a parameter: in a prepared
    statement's generic plan a parameter cannot prove a partial index's predicate, and the
    oldest-parked read then walked `ix_executions_user_status` over every QUEUED entry, dead
    ones included (0.3 ms a read under bench W4, where the partial index answers at once)."""
    return Execution.status == literal_column(f"'{status.value}'")


def _parked() -> Select[Any]:
    """The user's (`:user`) parked executions (the partial index `ix_executions_parked`,
    whose predicate `parked AND status = 'QUEUED'` the statement repeats word for word)."""
    return select(Execution.id).where(
        Execution.user_id == bindparam("user"),
        Execution.parked,
        _in(Status.QUEUED),
        Execution.parent_node_execution_id.is_(None),
    )


_OLDEST = (Execution.created_at, Execution.id)
_OLDEST_PARKED = DriverStatement.of(_parked().order_by(*_OLDEST).limit(1))


@dataclass(frozen=True)
class Slots:
    """What a start of a user's execution must know, read in one statement."""

    running: int
    # QUEUED executions of the user older than this one (parked, or their request on its
    # way), counted up to the limit: each is owed a slot before this one.
    ahead: int
    # The oldest parked one older than this one, and the oldest parked one other than it.
    older_parked: uuid.UUID | None
    other_parked: uuid.UUID | None


def _slots_statement() -> Select[Any]:
    before = tuple_(*_OLDEST) < tuple_(bindparam("created"), bindparam("execution"))
    top_level = (
        Execution.user_id == bindparam("user"),
        Execution.parent_node_execution_id.is_(None),
    )
    running = select(func.count()).where(*top_level, _in(Status.RUNNING))
    ahead = (
        select(Execution.id)
        .where(*top_level, _in(Status.QUEUED), before)
        .limit(bindparam("limit"))
        .subquery()
    )
    older = _parked().where(before).order_by(*_OLDEST).limit(1)
    other = _parked().where(Execution.id != bindparam("execution")).order_by(*_OLDEST).limit(1)
    return select(
        running.scalar_subquery(),
        select(func.count()).select_from(ahead).scalar_subquery(),
        older.scalar_subquery(),
        other.scalar_subquery(),
    )


_SLOTS = DriverStatement.of(_slots_statement())

# What `GroupSlots` starts from: the running count, the oldest QUEUED top-level executions
# (as many as the limit: `ahead` never counts more), and the oldest parked one.
_GROUP_SLOTS = DriverStatement.of(
    text(
        """
        SELECT
            (SELECT count(*) FROM executor.executions
             WHERE user_id = :user AND parent_node_execution_id IS NULL
               AND status = 'RUNNING') AS running,
            ARRAY(SELECT created_at FROM executor.executions
                  WHERE user_id = :user AND parent_node_execution_id IS NULL
                    AND status = 'QUEUED'
                  ORDER BY created_at, id LIMIT :limit) AS queued_at,
            ARRAY(SELECT id FROM executor.executions
                  WHERE user_id = :user AND parent_node_execution_id IS NULL
                    AND status = 'QUEUED'
                  ORDER BY created_at, id LIMIT :limit) AS queued_ids,
            (SELECT created_at FROM executor.executions
             WHERE user_id = :user AND parent_node_execution_id IS NULL AND parked
               AND status = 'QUEUED'
             ORDER BY created_at, id LIMIT 1) AS oldest_parked_at,
            (SELECT id FROM executor.executions
             WHERE user_id = :user AND parent_node_execution_id IS NULL AND parked
               AND status = 'QUEUED'
             ORDER BY created_at, id LIMIT 1) AS oldest_parked_id
        """
    )
)

Position = tuple[datetime, uuid.UUID]


@dataclass
class GroupSlots:
    """The slots of one user's executions started together (starts.py), read in one
    statement and then kept in memory: each start is told what `_slots` would have read for
    it had the starts before it been written, and each is recorded once started or parked.
    Exact while the user's lock is held: nobody else starts or parks the user's executions
    meanwhile (an end only frees a slot, which the park case counts again)."""

    limit: int
    running: int
    # (created_at, id) of QUEUED top-level executions, oldest first: the oldest `limit` of
    # those read, and those of the group parked since.
    queued: list[Position]
    parked: list[Position] = field(default_factory=list)

    @classmethod
    async def read(cls, session: AsyncSession, user_id: str, limit: int) -> GroupSlots:
        row = await _GROUP_SLOTS.fetchrow(session, {"user": user_id, "limit": limit})
        queued = list(zip(row["queued_at"], row["queued_ids"], strict=True))
        parked: list[Position] = []
        if row["oldest_parked_id"] is not None:
            parked.append((row["oldest_parked_at"], row["oldest_parked_id"]))
        return cls(limit, int(row["running"]), queued, parked)

    def slots(self, execution: Execution) -> Slots:
        position = (execution.created_at, execution.id)
        ahead = min(self.limit, bisect.bisect_left(self.queued, position))
        oldest = self.parked[0] if self.parked else None
        older = oldest[1] if oldest is not None and oldest < position else None
        other = next((id_ for _, id_ in self.parked if id_ != execution.id), None)
        return Slots(self.running, ahead, older, other)

    def record(self, execution: Execution) -> None:
        """`execution` was just started (or parked) by `Engine.start`."""
        if execution.parent_node_execution_id is not None:
            return
        if execution.status == Status.RUNNING.value:
            self.running += 1
        elif execution.status == Status.QUEUED.value:
            position = (execution.created_at, execution.id)
            bisect.insort(self.queued, position)
            if execution.parked:
                bisect.insort(self.parked, position)


async def _slots(session: AsyncSession, execution: Execution, limit: int) -> Slots:
    params = {
        "user": execution.user_id,
        "created": execution.created_at,
        "execution": execution.id,
        "limit": limit,
    }
    row = await _SLOTS.fetchrow(session, params)
    return Slots(int(row[0] or 0), int(row[1] or 0), row[2], row[3])


# FOR SHARE waits for a transaction that is ending one of them; READ COMMITTED then checks
# the row again and leaves it out if it is no longer RUNNING.
_STILL_RUNNING = DriverStatement.of(
    select(func.count()).select_from(
        select(Execution.id)
        .where(
            Execution.user_id == bindparam("user"),
            Execution.parent_node_execution_id.is_(None),
            Execution.status == Status.RUNNING.value,
        )
        .with_for_update(read=True)
        .subquery()
    )
)


async def _still_running(session: AsyncSession, execution: Execution) -> int:
    """The user's running top-level executions, each locked until this transaction ends
    (so none of them can end unseen before this start commits)."""
    row = await _STILL_RUNNING.fetchrow(session, {"user": execution.user_id})
    return int(row[0])


_LOCK_USER = DriverStatement.of(text("SELECT pg_advisory_xact_lock(hashtext(:user))"))


async def lock_user(session: AsyncSession, user_id: str) -> None:
    """Serialise starts of one user's executions across scheduler partitions."""
    await _LOCK_USER.fetch(session, {"user": user_id})


async def _waiting_by_node(
    session: AsyncSession, execution_id: uuid.UUID
) -> defaultdict[str, list[NodeExecution]]:
    rows = (
        await session.scalars(
            select(NodeExecution)
            .where(
                NodeExecution.execution_id == execution_id,
                NodeExecution.status == Status.INCOMPLETE.value,
            )
            .order_by(NodeExecution.seq)
        )
    ).all()
    waiting: defaultdict[str, list[NodeExecution]] = defaultdict(list)
    for row in rows:
        waiting[row.node_id].append(row)
    return waiting
