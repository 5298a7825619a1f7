"""Executor state in PostgreSQL: plain async functions taking `session=`.

Status changes are conditional UPDATEs on the transition table (G7); a node execution's
result is stored only by the attempt that claimed it (the attempt number is the fencing
token, G3), together with the outbox row that announces it (G1).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple, cast

import asyncpg
from sqlalchemy import (
    ColumnElement,
    Select,
    Table,
    and_,
    bindparam,
    func,
    insert,
    inspect,
    or_,
    select,
    text,
    update,
)
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached, undefer
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.util import identity_key
from sqlalchemy.sql.schema import CallableColumnDefault, ScalarElementColumnDefault

from agentloom_common.bus import Topology
from agentloom_common.db import DriverStatement
from agentloom_executor import outbox
from agentloom_executor.messages import CancelExecution, ExecutionRequested, NodeFinished
from agentloom_executor.status import TERMINAL, Status, sources_of
from agentloom_executor.tables import Execution, NodeExecution, OutboxMessage


def now() -> datetime:
    return datetime.now(UTC)


def parse_uuid(value: str) -> uuid.UUID | None:
    try:
        return uuid.UUID(value)
    except (ValueError, TypeError):
        return None


_EXECUTIONS = cast(Table, Execution.__table__)
_OUTBOX = cast(Table, OutboxMessage.__table__)
_EXECUTION_COLUMNS = [column.name for column in _EXECUTIONS.columns]
_OUTBOX_COLUMNS = [column.name for column in _OUTBOX.columns if column.name != "id"]
# The execution and its `execution.requested` in one statement (a data-modifying CTE): on a
# session in autocommit (the executions API) creating an execution is one round trip, not
# BEGIN, two INSERTs and COMMIT. Built once, parameters bound at execution.
_CREATE = (
    insert(_OUTBOX)
    .values({name: bindparam(f"o_{name}") for name in _OUTBOX_COLUMNS})
    .add_cte(
        insert(_EXECUTIONS)
        .values({name: bindparam(f"e_{name}") for name in _EXECUTION_COLUMNS})
        .cte("created")
    )
    .returning(_OUTBOX.c.id)
)


def new_execution(
    *,
    user_id: str,
    graph_id: str,
    graph_version: int,
    graph: dict[str, Any],
    inputs: dict[str, Any],
    credentials_inputs: dict[str, Any],
    parent: tuple[uuid.UUID, uuid.UUID, int] | None = None,
    max_credits: int | None = None,
    idempotency_key: str | None = None,
) -> Execution:
    """A QUEUED execution, not written yet. `parent` is (parent execution id, parent node
    execution id, depth) for a sub-agent."""
    created_at = now()
    return Execution(
        id=uuid.uuid4(),
        user_id=user_id,
        graph_id=graph_id,
        graph_version=graph_version,
        status=Status.QUEUED.value,
        inputs=inputs,
        credentials_inputs=credentials_inputs,
        outputs={},
        graph=graph,
        error=None,
        static_values={},
        node_execution_total=0,
        deadline_at=None,
        requested_at=created_at,
        parked=False,
        parent_execution_id=parent[0] if parent else None,
        parent_node_execution_id=parent[1] if parent else None,
        depth=parent[2] if parent else 0,
        max_credits=max_credits,
        idempotency_key=idempotency_key,
        node_count=0,
        cost=0,
        created_at=created_at,
        started_at=None,
        ended_at=None,
    )


async def create_execution(
    session: AsyncSession,
    *,
    topology: Topology,
    user_id: str,
    graph_id: str,
    graph_version: int,
    graph: dict[str, Any],
    inputs: dict[str, Any],
    credentials_inputs: dict[str, Any],
    parent: tuple[uuid.UUID, uuid.UUID, int] | None = None,
    max_credits: int | None = None,
    idempotency_key: str | None = None,
) -> tuple[Execution, OutboxMessage]:
    """Insert a QUEUED execution and, in the same statement, its `execution.requested` (for
    the scheduler to start it). The execution returned is not attached to the session
    (read it again to change it)."""
    execution = new_execution(
        user_id=user_id,
        graph_id=graph_id,
        graph_version=graph_version,
        graph=graph,
        inputs=inputs,
        credentials_inputs=credentials_inputs,
        parent=parent,
        max_credits=max_credits,
        idempotency_key=idempotency_key,
    )
    message = outbox.to_scheduler(
        topology, str(execution.id), ExecutionRequested(execution_id=str(execution.id))
    )
    values = {f"e_{name}": getattr(execution, name) for name in _EXECUTION_COLUMNS}
    values.update({f"o_{name}": getattr(message, name) for name in _OUTBOX_COLUMNS})
    message.id = (await session.execute(_CREATE, values)).scalar_one()
    return execution, message


async def find_by_idempotency_key(
    session: AsyncSession, *, user_id: str, idempotency_key: str
) -> Execution | None:
    result = await session.execute(
        select(Execution).where(
            Execution.user_id == user_id, Execution.idempotency_key == idempotency_key
        )
    )
    return result.scalar_one_or_none()


async def get_execution(
    session: AsyncSession, *, user_id: str, execution_id: str
) -> Execution | None:
    """The user's execution, or None (also for another user's: the caller answers 404)."""
    parsed = parse_uuid(execution_id)
    if parsed is None:
        return None
    execution = await session.get(Execution, parsed)
    if execution is None or execution.user_id != user_id:
        return None
    return execution


class ExecutionRow(NamedTuple):
    """What a read of one execution answers (`GetExecution`): the fields of `Execution`
    that `convert.execution_proto` reads, straight from the driver."""

    id: uuid.UUID
    user_id: str
    graph_id: str
    graph_version: int
    status: str
    inputs: dict[str, Any]
    outputs: dict[str, Any]
    error: str | None
    created_at: datetime
    started_at: datetime | None
    ended_at: datetime | None
    node_count: int
    cost: int
    max_credits: int | None


_READ_EXECUTION = DriverStatement.of(
    select(*(getattr(Execution, name) for name in ExecutionRow._fields)).where(
        Execution.id == bindparam("execution"), Execution.user_id == bindparam("user")
    )
)


async def read_execution(
    session: AsyncSession, *, user_id: str, execution_id: str
) -> ExecutionRow | None:
    """The user's execution as `get_execution` finds it, without loading an ORM object (a
    statement prepared once; under bench W4, where every execution is read back, the ORM
    `get` was an eighth of the executions API's CPU)."""
    parsed = parse_uuid(execution_id)
    if parsed is None:
        return None
    record = await _READ_EXECUTION.fetchrow(
        session, {"execution": parsed, "user": user_id}, flush=False
    )
    return None if record is None else ExecutionRow(*record)


# The hot path's statements are built once: building one (clauses, coercions, its cache
# key) cost more Python time than running it. Parameters are bound at execution.
_LOCK = (
    select(Execution)
    .where(Execution.id == bindparam("execution"))
    .with_for_update()
    .execution_options(populate_existing=True)
)
_LOCKS = {
    (with_graph, skip_locked): (
        (_LOCK.options(undefer(Execution.graph)) if with_graph else _LOCK).with_for_update(
            skip_locked=skip_locked
        )
    )
    for with_graph in (False, True)
    for skip_locked in (False, True)
}


async def lock_execution(
    session: AsyncSession,
    execution_id: str,
    *,
    with_graph: bool = False,
    skip_locked: bool = False,
) -> Execution | None:
    """The execution row, locked for this transaction; `with_graph` loads its graph
    snapshot in the same round trip (for a caller whose cache lacks it); `skip_locked`:
    None at once, rather than waiting, when another transaction holds the row."""
    parsed = parse_uuid(execution_id)
    if parsed is None:
        return None
    if session.sync_session.identity_map.get(identity_key(Execution, parsed)) is not None:
        # Already in the session: refreshed from the row, as the ORM does it.
        return await session.scalar(_LOCKS[(with_graph, skip_locked)], {"execution": parsed})
    names, statement = _DRIVER_LOCKS[(with_graph, skip_locked)]
    row = await statement.fetchrow(session, {"execution": parsed})
    if row is None:
        return None
    # Loaded as a query would load it, without the ORM's loading machinery (a tenth of a
    # runner's CPU under bench W4): set from the row, then made persistent with no changes.
    values = dict(zip(names, row, strict=True))
    for name in _UUID_COLUMNS:
        if values[name] is not None:
            values[name] = uuid.UUID(bytes=values[name].bytes)
    execution = Execution(**values)
    make_transient_to_detached(execution)
    session.add(execution)
    return execution


_UUID_COLUMNS = ("id", "parent_node_execution_id", "parent_execution_id")


def _driver_lock(with_graph: bool, skip_locked: bool) -> tuple[tuple[str, ...], DriverStatement]:
    names = tuple(c.key for c in _EXECUTIONS.columns if with_graph or c.key != "graph")
    skip = " SKIP LOCKED" if skip_locked else ""
    sql = f"SELECT {', '.join(names)} FROM executor.executions WHERE id = :execution FOR UPDATE"
    return names, DriverStatement.of(text(sql + skip))


_DRIVER_LOCKS = {
    (with_graph, skip_locked): _driver_lock(with_graph, skip_locked)
    for with_graph in (False, True)
    for skip_locked in (False, True)
}


async def list_executions(
    session: AsyncSession,
    *,
    user_id: str,
    graph_id: str | None,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[Execution]:
    """Newest first; `after` is the (created_at, id) of the last item of the previous page."""
    query = select(Execution).where(Execution.user_id == user_id)
    if graph_id:
        query = query.where(Execution.graph_id == graph_id)
    if after is not None:
        created_at, last_id = after
        query = query.where(
            or_(
                Execution.created_at < created_at,
                and_(Execution.created_at == created_at, Execution.id < last_id),
            )
        )
    query = query.order_by(Execution.created_at.desc(), Execution.id.desc()).limit(limit)
    return list((await session.scalars(query)).all())


async def list_node_executions(
    session: AsyncSession, execution_id: uuid.UUID
) -> Sequence[NodeExecution]:
    return (
        await session.scalars(
            select(NodeExecution)
            .where(NodeExecution.execution_id == execution_id)
            .order_by(NodeExecution.seq)
        )
    ).all()


_CANCEL_OPEN = (
    update(NodeExecution)
    .execution_options(synchronize_session=False)
    .where(
        NodeExecution.execution_id == bindparam("execution"),
        NodeExecution.status.in_(
            [Status.INCOMPLETE.value, Status.QUEUED.value, Status.RUNNING.value]
        ),
    )
    .values(status=Status.CANCELLED.value, ended_at=bindparam("moment"), lease_expires_at=None)
    .returning(NodeExecution.status)
)


async def end_execution(
    session: AsyncSession,
    execution: Execution,
    status: Status,
    topology: Topology,
    *,
    error: str | None = None,
    tally: Tally | None = None,
    may_have_children: bool = True,
) -> list[OutboxMessage]:
    """Move a locked, non-terminal execution to a terminal status; every node execution not
    yet finished is cancelled, runners are told to interrupt the running ones, child
    executions (sub-agents) end with it, and a child's end finishes its parent's node.
    `tally`: the caller counted the node executions in this transaction with nothing left
    to run (no need to count again); `may_have_children`: False when the graph runs no
    sub-agent (no need to look for children)."""
    assert status in TERMINAL
    interrupted: Sequence[Any] = []
    if tally is None or tally.active or tally.open:
        # Nothing to cancel when the caller's count found none open: a statement less on
        # the usual end (everything ran).
        interrupted = (
            await session.execute(_CANCEL_OPEN, {"execution": execution.id, "moment": now()})
        ).all()
    if tally is None or tally.active:
        tally = await node_tally(session, execution.id)
    await _write_end(
        session,
        execution,
        {
            "node_count": tally.ran,
            "cost": tally.cost,
            "status": status.value,
            "error": error,
            "ended_at": now(),
            "outputs": execution.outputs,
            "node_execution_total": execution.node_execution_total,
        },
    )
    rows: list[OutboxMessage] = []
    if interrupted:
        rows.append(outbox.to_control(CancelExecution(execution_id=str(execution.id))))
    session.add_all(rows)
    if may_have_children:
        children = (
            await session.scalars(
                select(Execution)
                .where(
                    Execution.parent_execution_id == execution.id,
                    Execution.status.in_([Status.QUEUED.value, Status.RUNNING.value]),
                )
                .with_for_update()
            )
        ).all()
        for child in children:
            rows += await end_execution(
                session, child, Status.CANCELLED, topology, error="its parent execution ended"
            )
    if execution.parent_node_execution_id is not None and execution.parent_execution_id:
        rows += await _finish_parent_node(session, execution, topology)
    return rows


# The columns an end writes, in one statement prepared once (through the unit of work, the
# flush of this one UPDATE cost a runner more CPU than the rest of the end; bench W4).
_END_EXECUTION = DriverStatement.of(
    text(
        """
        UPDATE executor.executions
        SET status = :status, error = :error, ended_at = :ended_at, node_count = :node_count,
            cost = :cost, outputs = CAST(:outputs AS jsonb),
            node_execution_total = :node_execution_total
        WHERE id = :execution
        """
    )
)


async def _write_end(session: AsyncSession, execution: Execution, values: dict[str, Any]) -> None:
    """Set the end's `values` on the execution and write them. A stored execution gets them
    as its committed state (the unit of work has nothing left to write for them) and one
    UPDATE, after the session's other pending changes; one not written yet (ended while it
    started) keeps them as changes, written with its INSERT."""
    if not inspect(execution).persistent:
        for name, value in values.items():
            setattr(execution, name, value)
        return
    for name, value in values.items():
        set_committed_value(execution, name, value)
    params = {**values, "outputs": json.dumps(values["outputs"]), "execution": execution.id}
    await _END_EXECUTION.execute(session, params)


async def _finish_parent_node(
    session: AsyncSession, child: Execution, topology: Topology
) -> list[OutboxMessage]:
    """The sub-agent node waiting on this child finishes with the child's outputs. Its own
    cost stays 0: the child's node executions carry (and were charged) their costs."""
    if child.status == Status.COMPLETED.value:
        status, error = Status.COMPLETED, None
        outputs = [[name, value] for name, values in child.outputs.items() for value in values]
    else:
        status = Status.FAILED
        error = f"sub-agent {child.status.lower()}: {child.error or 'no reason given'}"
        outputs = [["error", error]]
    finished = (
        await session.execute(
            update(NodeExecution)
            .execution_options(synchronize_session=False)
            .where(
                NodeExecution.id == child.parent_node_execution_id,
                NodeExecution.status == Status.RUNNING.value,
            )
            .values(
                status=status.value,
                outputs=outputs,
                error=error,
                ended_at=now(),
            )
            .returning(NodeExecution.id)
        )
    ).one_or_none()
    if finished is None:
        return []
    parent_id = str(child.parent_execution_id)
    row = outbox.to_scheduler(
        topology,
        parent_id,
        NodeFinished(execution_id=parent_id, node_execution_id=str(child.parent_node_execution_id)),
    )
    session.add(row)
    return [row]


@dataclass(frozen=True)
class Tally:
    """An execution's node executions: still to come, and run (with their cost); `open`:
    those an end would cancel (waiting for inputs, queued or running)."""

    active: int
    ran: int
    cost: int
    open: int


def _tally_statement() -> Select[int, int, int, int]:
    # Equalities rather than IN lists: the statement is compiled once for the driver.
    def status_is(*statuses: Status) -> ColumnElement[bool]:
        return or_(*(NodeExecution.status == status.value for status in statuses))

    finished = status_is(Status.COMPLETED, Status.FAILED)
    is_active = or_(
        status_is(Status.QUEUED, Status.RUNNING),
        and_(finished, NodeExecution.applied.is_(False)),
    )
    is_open = status_is(Status.INCOMPLETE, Status.QUEUED, Status.RUNNING)
    return select(
        func.count().filter(is_active),
        func.count().filter(finished),
        func.coalesce(func.sum(NodeExecution.cost).filter(finished), 0),
        func.count().filter(is_open),
    ).where(NodeExecution.execution_id == bindparam("execution"))


_TALLY = DriverStatement.of(_tally_statement())


def pending_beyond_executions(session: AsyncSession) -> bool:
    """Whether the session holds unwritten changes other than to existing execution rows.
    Counting or writing node executions must see those (a flush first); an execution row's
    own changes can wait for the UPDATE that ends it, so a runner's transaction writes that
    row once instead of twice (issue 8)."""
    if session.new:
        return True
    # `dirty` is optimistic (any attribute set, even to the value it had): ask each.
    return any(not isinstance(o, Execution) and session.is_modified(o) for o in session.dirty)


def _json_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, bytes):
        return "\\x" + value.hex()  # bytea's hex input
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _json_rows(objects: Sequence[Any], table: Table) -> str:
    """`objects` as a JSON array of rows keyed by column name, as the unit of work would
    write them: the column's default where the attribute is None."""
    columns = [(column.key, column.default) for column in table.columns]
    rows = []
    for obj in objects:
        row = {}
        for key, default in columns:
            value = getattr(obj, key)
            if value is None and isinstance(default, ScalarElementColumnDefault):
                value = default.arg
            elif value is None and isinstance(default, CallableColumnDefault):
                value = cast(Any, default.arg)(None)  # takes a context, unused by ours
            row[key] = value
        rows.append(row)
    return json.dumps(rows, default=_json_value)


_WRITE_NEW = DriverStatement.of(
    text(
        "SELECT message_pk, message_key FROM executor.write_new("
        "CAST(:executions AS jsonb), CAST(:nodes AS jsonb), CAST(:messages AS jsonb))"
    )
)
_NODES = cast(Table, NodeExecution.__table__)


async def write_new(session: AsyncSession) -> None:
    """Write the session's new executions, node executions and outbox messages (a group
    start's) in one round trip (`executor.write_new`, migration 0013: the three INSERTs
    in that order, as the unit of work would order them) instead of the unit of work,
    whose flush of them was an eighth of the executions API's CPU under bench W4 and
    three round trips. The objects leave the session (what the caller reads of them after
    the commit is what was written); each message gets the id it was given. Anything else
    new stays for the unit of work. An idempotency key already taken raises
    IntegrityError, as a flush would."""
    new = sorted(session.new, key=lambda o: inspect(o).insert_order)
    executions = [o for o in new if isinstance(o, Execution)]
    nodes = [o for o in new if isinstance(o, NodeExecution)]
    messages = [o for o in new if isinstance(o, OutboxMessage)]
    if not (executions or nodes or messages):
        return
    for written in (*executions, *nodes, *messages):
        session.expunge(written)
    params = {
        "executions": _json_rows(executions, _EXECUTIONS),
        "nodes": _json_rows(nodes, _NODES),
        "messages": _json_rows(messages, _OUTBOX),
    }
    try:
        rows = await _WRITE_NEW.fetch(session, params)
    except asyncpg.IntegrityConstraintViolationError as error:
        raise IntegrityError(_WRITE_NEW.sql, None, error) from error
    ids = {message_id: id_ for id_, message_id in rows}
    for message in messages:
        message.id = ids[message.message_id]


async def node_tally(session: AsyncSession, execution_id: uuid.UUID) -> Tally:
    """In one statement: node executions still to come (queued, running, or finished with
    outputs not yet passed on: their result message is on its way) and those that ran
    (completed or failed), with their total cost."""
    row = await _TALLY.fetchrow(
        session, {"execution": execution_id}, flush=pending_beyond_executions(session)
    )
    return Tally(active=int(row[0]), ran=int(row[1]), cost=int(row[2]), open=int(row[3]))


# Node executions queued and finished in one runner transaction, written in one statement
# (the ORM's unit of work was a third of a runner's CPU under bench W1: issue 8). The
# trigger records their events per row, as for any INSERT (migration 0007).
_INSERT_FINISHED = """
    INSERT INTO executor.node_executions
        (id, execution_id, node_id, block_id, status, inputs, outputs, error, attempt,
         cost, config, applied, dispatched_at, created_at, started_at, ended_at)
    SELECT * FROM unnest(
        CAST(:ids AS uuid[]), CAST(:executions AS uuid[]), CAST(:nodes AS text[]),
        CAST(:blocks AS text[]), CAST(:statuses AS text[]), CAST(:inputs AS jsonb[]),
        CAST(:outputs AS jsonb[]), CAST(:errors AS text[]), CAST(:attempts AS integer[]),
        CAST(:costs AS bigint[]), CAST(:configs AS jsonb[]), CAST(:applied AS boolean[]),
        CAST(:dispatched AS timestamptz[]), CAST(:created AS timestamptz[]),
        CAST(:started AS timestamptz[]), CAST(:ended AS timestamptz[])
    )
"""
_WRITE_FINISHED = DriverStatement.of(text(_INSERT_FINISHED))

# The same INSERT and the execution's tally (as `_TALLY` counts it) in one round trip: the
# rows the statement inserts are not in its snapshot, so they are counted from RETURNING and
# added to the rest (everything else this transaction wrote is flushed first).
_WRITE_FINISHED_AND_TALLY = DriverStatement.of(
    text(
        f"""
        WITH written AS ({_INSERT_FINISHED} RETURNING status, applied, cost),
        every AS (
            SELECT status, applied, cost FROM executor.node_executions
            WHERE execution_id = :execution
            UNION ALL
            SELECT status, applied, cost FROM written
        )
        SELECT
            count(*) FILTER (WHERE status IN ('QUEUED', 'RUNNING')
                OR (status IN ('COMPLETED', 'FAILED') AND NOT applied)),
            count(*) FILTER (WHERE status IN ('COMPLETED', 'FAILED')),
            coalesce(sum(cost) FILTER (WHERE status IN ('COMPLETED', 'FAILED')), 0),
            count(*) FILTER (WHERE status IN ('INCOMPLETE', 'QUEUED', 'RUNNING'))
        FROM every
        """
    )
)


async def write_finished(session: AsyncSession, nodes: Sequence[NodeExecution]) -> None:
    """Insert node executions that are not in the session, in their final state, in one
    statement (in the order given: `seq` follows it)."""
    if not nodes:
        return
    await _WRITE_FINISHED.execute(
        session, flush=pending_beyond_executions(session), params=_finished_params(nodes)
    )


async def write_finished_and_tally(
    session: AsyncSession, execution_id: uuid.UUID, nodes: Sequence[NodeExecution]
) -> Tally:
    """`write_finished`, then `node_tally`, in one round trip."""
    if not nodes:
        return await node_tally(session, execution_id)
    row = await _WRITE_FINISHED_AND_TALLY.fetchrow(
        session,
        {"execution": execution_id, **_finished_params(nodes)},
        flush=pending_beyond_executions(session),
    )
    return Tally(active=int(row[0]), ran=int(row[1]), cost=int(row[2]), open=int(row[3]))


def _finished_params(nodes: Sequence[NodeExecution]) -> dict[str, Any]:
    return {
        "ids": [n.id for n in nodes],
        "executions": [n.execution_id for n in nodes],
        "nodes": [n.node_id for n in nodes],
        "blocks": [n.block_id for n in nodes],
        "statuses": [n.status for n in nodes],
        "inputs": [json.dumps(n.inputs) for n in nodes],
        "outputs": [None if n.outputs is None else json.dumps(n.outputs) for n in nodes],
        "errors": [n.error for n in nodes],
        "attempts": [n.attempt for n in nodes],
        "costs": [n.cost for n in nodes],
        "configs": [json.dumps(n.config) for n in nodes],
        "applied": [bool(n.applied) for n in nodes],
        "dispatched": [n.dispatched_at for n in nodes],
        "created": [n.created_at for n in nodes],
        "started": [n.started_at for n in nodes],
        "ended": [n.ended_at for n in nodes],
    }


@dataclass(frozen=True)
class ClaimedNode:
    node_execution_id: uuid.UUID
    execution_id: uuid.UUID
    node_id: str
    block_id: str
    inputs: dict[str, Any]
    attempt: int
    user_id: str
    graph_id: str
    config: dict[str, Any]
    max_credits: int | None = None
    credentials_inputs: dict[str, Any] | None = None


_CLAIM = DriverStatement.of(
    update(NodeExecution)
    .where(
        NodeExecution.id == bindparam("node_execution"),
        or_(
            and_(
                NodeExecution.status == Status.QUEUED.value,
                or_(
                    NodeExecution.retry_at.is_(None),
                    NodeExecution.retry_at <= bindparam("moment"),
                ),
            ),
            and_(
                NodeExecution.status == Status.RUNNING.value,
                NodeExecution.lease_expires_at < bindparam("moment"),
            ),
        ),
        NodeExecution.execution_id == Execution.id,
        Execution.status == Status.RUNNING.value,
    )
    .values(
        status=Status.RUNNING.value,
        attempt=NodeExecution.attempt + 1,
        started_at=bindparam("moment"),
        lease_expires_at=bindparam("lease_until"),
        retry_at=None,
    )
    .returning(
        NodeExecution.execution_id,
        NodeExecution.node_id,
        NodeExecution.block_id,
        NodeExecution.inputs,
        NodeExecution.attempt,
        Execution.user_id,
        Execution.graph_id,
        NodeExecution.config,
        Execution.max_credits,
        Execution.credentials_inputs,
    )
)


async def claim_node(
    session: AsyncSession, node_execution_id: str, *, lease_s: float
) -> ClaimedNode | None:
    """Take a node execution for a run: QUEUED (and due) -> RUNNING with a new attempt
    number and a lease, only while the execution is RUNNING. A RUNNING one whose lease has
    expired (its runner died or froze) may be taken over too; the attempt number fences off
    the old runner should it come back (G3)."""
    parsed = parse_uuid(node_execution_id)
    if parsed is None:
        return None
    moment = now()
    params = {
        "node_execution": parsed,
        "moment": moment,
        "lease_until": moment + timedelta(seconds=lease_s),
    }
    row = await _CLAIM.fetchrow(session, params)
    if row is None:
        return None
    return ClaimedNode(parsed, *row)


async def claim_queued(
    session: AsyncSession,
    execution_id: uuid.UUID,
    *,
    block_ids: Collection[str],
    limit: int,
    lease_s: float,
) -> Sequence[NodeExecution]:
    """Claim up to `limit` node executions of an execution that wait for a runner (QUEUED,
    no retry pending) and run one of `block_ids`, oldest first, skipping any another
    runner is claiming now. Their jobs, when they come, find them taken."""
    if not block_ids or limit <= 0:
        return []
    moment = now()
    waiting = (
        select(NodeExecution.id)
        .where(
            NodeExecution.execution_id == execution_id,
            NodeExecution.status == Status.QUEUED.value,
            NodeExecution.retry_at.is_(None),
            NodeExecution.block_id.in_(list(block_ids)),
        )
        .order_by(NodeExecution.seq)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    claimed = await session.scalars(
        update(NodeExecution)
        .where(NodeExecution.id.in_(waiting), NodeExecution.status == Status.QUEUED.value)
        .values(
            status=Status.RUNNING.value,
            attempt=NodeExecution.attempt + 1,
            started_at=moment,
            lease_expires_at=moment + timedelta(seconds=lease_s),
        )
        .returning(NodeExecution),
        execution_options={"synchronize_session": False, "populate_existing": True},
    )
    return sorted(claimed.all(), key=lambda node: node.seq)


async def extend_leases(
    session: AsyncSession, owned: Sequence[tuple[uuid.UUID, int]], lease_s: float
) -> None:
    """Heartbeat: push back the lease of every node execution this runner still owns."""
    if not owned:
        return
    ids = [node_id for node_id, _ in owned]
    attempts = dict(owned)
    rows = (
        await session.execute(
            select(NodeExecution.id, NodeExecution.attempt).where(
                NodeExecution.id.in_(ids), NodeExecution.status == Status.RUNNING.value
            )
        )
    ).all()
    mine = [node_id for node_id, attempt in rows if attempts.get(node_id) == attempt]
    if mine:
        await session.execute(
            update(NodeExecution)
            .execution_options(synchronize_session=False)
            .where(NodeExecution.id.in_(mine))
            .values(lease_expires_at=now() + timedelta(seconds=lease_s))
        )


async def requeue_node(
    session: AsyncSession,
    claim: ClaimedNode,
    *,
    retry_at: datetime | None,
    error: str | None,
) -> bool:
    """RUNNING -> QUEUED for this attempt: a retry (not before `retry_at`, dispatched by the
    sweeper) or a release on shutdown (dispatched by the job's redelivery)."""
    result = await session.execute(
        update(NodeExecution)
        .execution_options(synchronize_session=False)
        .where(
            NodeExecution.id == claim.node_execution_id,
            NodeExecution.status == Status.RUNNING.value,
            NodeExecution.attempt == claim.attempt,
        )
        .values(
            status=Status.QUEUED.value,
            retry_at=retry_at,
            error=error,
            lease_expires_at=None,
            dispatched_at=now() if retry_at is None else None,
        )
        .returning(NodeExecution.id)
    )
    return result.one_or_none() is not None


_NODE_COLUMNS = tuple(column.name for column in NodeExecution.__table__.columns)


def _finish_statement(status: Status) -> DriverStatement:
    """RUNNING -> `status` for the claimed attempt, returning the whole row. The status is
    written into the SQL (one statement per target status), so nothing is rendered per call
    (an `IN` list of sources was, at every call, under the ORM)."""
    if Status.RUNNING.value not in sources_of(status):
        raise ValueError(f"a node execution cannot go from RUNNING to {status.value}")
    return DriverStatement.of(
        text(
            f"""
            UPDATE executor.node_executions
            SET status = '{status.value}', outputs = CAST(:new_outputs AS jsonb),
                error = :new_error, cost = :new_cost, ended_at = :moment,
                lease_expires_at = NULL, applied = :new_applied
            WHERE id = :node_execution AND status = 'RUNNING' AND attempt = :claimed_attempt
            RETURNING {", ".join(_NODE_COLUMNS)}
            """
        )
    )


_FINISH = {status: _finish_statement(status) for status in (Status.COMPLETED, Status.FAILED)}


async def finish_node(
    session: AsyncSession,
    claim: ClaimedNode,
    *,
    status: Status,
    outputs: list[list[Any]],
    error: str | None,
    cost: int,
    applied: bool = False,
) -> NodeExecution | None:
    """Store the attempt's result (RUNNING -> COMPLETED/FAILED); returns the stored row, as
    a transient `NodeExecution` (not in the session: what the caller changes on it is not
    written back).
    `applied`: the caller passes the result along the graph in this same transaction.

    Returns None, storing nothing, when this attempt no longer owns the node execution
    (it was cancelled, or a newer attempt took it over)."""
    # One round trip, prepared once: through the ORM (an UPDATE ... RETURNING loaded into
    # the identity map) this was a ninth of a runner's CPU under bench W4.
    params = {
        "node_execution": claim.node_execution_id,
        "claimed_attempt": claim.attempt,
        "new_outputs": json.dumps(outputs),
        "new_error": error,
        "new_cost": cost,
        "moment": now(),
        "new_applied": applied,
    }
    row = await _FINISH[status].fetchrow(session, params)
    if row is None:
        return None
    return NodeExecution(**dict(zip(_NODE_COLUMNS, row, strict=True)))


async def await_child(session: AsyncSession, claim: ClaimedNode) -> bool:
    """The sub-agent node gives up its lease (no runner holds it while the child runs);
    False when this attempt no longer owns the node execution."""
    result = await session.execute(
        update(NodeExecution)
        .execution_options(synchronize_session=False)
        .where(
            NodeExecution.id == claim.node_execution_id,
            NodeExecution.status == Status.RUNNING.value,
            NodeExecution.attempt == claim.attempt,
        )
        .values(lease_expires_at=None)
        .returning(NodeExecution.id)
    )
    return result.one_or_none() is not None


async def ancestor_graph_ids(session: AsyncSession, execution_id: uuid.UUID) -> list[str]:
    """Graph ids of an execution and of every execution above it (sub-agent nesting)."""
    found: list[str] = []
    current: uuid.UUID | None = execution_id
    while current is not None:
        row = (
            await session.execute(
                select(Execution.graph_id, Execution.parent_execution_id).where(
                    Execution.id == current
                )
            )
        ).one_or_none()
        if row is None:
            break
        found.append(row[0])
        current = row[1]
    return found


async def node_status(session: AsyncSession, node_execution_id: str) -> str | None:
    parsed = parse_uuid(node_execution_id)
    if parsed is None:
        return None
    return await session.scalar(select(NodeExecution.status).where(NodeExecution.id == parsed))


async def execution_graph(session: AsyncSession, execution_id: uuid.UUID) -> dict[str, Any]:
    """The graph snapshot an execution runs (nodes and links)."""
    graph = await session.scalar(select(Execution.graph).where(Execution.id == execution_id))
    return graph or {}


async def record_tool_call(
    session: AsyncSession,
    claim: ClaimedNode,
    *,
    status: Status,
    outputs: list[list[Any]],
    error: str | None,
    cost: int,
    started_at: datetime,
) -> None:
    """Store a tool call an agent node made as a finished node execution of the tool node.

    It is `applied` from the start: a tool answers its agent, so the scheduler passes
    nothing along the tool node's links and waits for nothing from it."""
    moment = now()
    session.add(
        NodeExecution(
            id=claim.node_execution_id,
            execution_id=claim.execution_id,
            node_id=claim.node_id,
            block_id=claim.block_id,
            status=status.value,
            inputs=claim.inputs,
            outputs=outputs,
            error=error,
            attempt=claim.attempt,
            cost=cost,
            config=claim.config,
            applied=True,
            created_at=started_at,
            started_at=started_at,
            ended_at=moment,
        )
    )
    await session.flush()
