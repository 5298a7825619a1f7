"""Execution events: recorded by triggers with every change, numbered 1..n per execution in
commit order by the relay, published on the bus once numbered."""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import pytest
from sqlalchemy import insert, select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from agentloom_common import event_batches
from agentloom_common.bus import EVENTS_EXCHANGE, Publisher
from agentloom_executor import events as relay_module
from agentloom_executor import repository
from agentloom_executor.events import RELAY_LOCK, EventRelay, replay
from agentloom_executor.server import Infra
from agentloom_executor.tables import (
    EventCounter,
    EventRelayCursor,
    Execution,
    ExecutionEvent,
    NodeExecution,
    QueuedEvent,
)

Submit = Callable[[Infra, dict[str, Any], dict[str, Any], str], Awaitable[str]]
WaitTerminal = Callable[[Infra, str], Awaitable[Execution]]

CHAIN = {
    "nodes": [
        {"id": "in", "block_id": "text_input_block", "input_default": {"name": "w"}},
        {"id": "t", "block_id": "text_template_block", "input_default": {"template": "<{{ x }}>"}},
        {"id": "out", "block_id": "output_block", "input_default": {"name": "result"}},
    ],
    "links": [
        {"source_id": "in", "source_name": "text", "sink_id": "t", "sink_name": "x"},
        {"source_id": "t", "source_name": "text", "sink_id": "out", "sink_name": "value"},
    ],
}


async def _published_events(shared: Infra, execution_id: str) -> list[dict[str, Any]]:
    """Every event of the execution, once all are numbered and published."""
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        async with shared.sessions() as session:
            queued = await session.scalar(
                select(QueuedEvent.id)
                .where(QueuedEvent.execution_id == uuid.UUID(execution_id))
                .limit(1)
            )
            unpublished = await session.scalar(
                select(ExecutionEvent.id)
                .where(
                    ExecutionEvent.execution_id == uuid.UUID(execution_id),
                    ExecutionEvent.id
                    > select(EventRelayCursor.published_through).scalar_subquery(),
                )
                .limit(1)
            )
            if queued is None and unpublished is None:
                return await replay(session, execution_id=execution_id, after_seq=0, limit=10_000)
        assert asyncio.get_running_loop().time() < deadline, "events were not published"
        await asyncio.sleep(0.05)


async def test_a_chain_yields_numbered_status_and_output_events_in_order(
    engine: Infra, submit: Submit, wait_terminal: WaitTerminal
) -> None:
    user = f"user-{uuid.uuid4().hex[:8]}"
    channel = await engine.connection.channel()
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(EVENTS_EXCHANGE, "#")

    execution_id = await submit(engine, CHAIN, {"w": "hi"}, user)
    execution = await wait_terminal(engine, execution_id)
    assert execution.status == "COMPLETED"
    events = await _published_events(engine, execution_id)

    assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
    assert all(event["event_id"] == f"{execution_id}:{event['seq']}" for event in events)
    assert all(event["user_id"] == user and event["graph_id"] == "g-test" for event in events)
    statuses = [e["data"]["status"] for e in events if e["type"] == "execution.status"]
    assert statuses == ["QUEUED", "RUNNING", "COMPLETED"]
    assert events[0]["type"] == "execution.status" and events[-1]["type"] == "execution.status"

    outputs = [
        (e["data"]["node_id"], e["data"]["pin"], e["data"]["value"])
        for e in events
        if e["type"] == "node.output"
    ]
    assert ("t", "text", "<hi>") in outputs
    assert ("out", "output", "<hi>") in outputs
    for node_id in ("in", "t", "out"):
        node_events = [e for e in events if e["data"].get("node_id") == node_id]
        node_statuses = [e["data"]["status"] for e in node_events if e["type"] == "node.status"]
        assert node_statuses[-2:] == ["RUNNING", "COMPLETED"], node_statuses
        # Outputs come after RUNNING and before COMPLETED.
        kinds = [e["type"] for e in node_events]
        first_output = kinds.index("node.output")
        assert node_statuses and kinds[-1] == "node.status"
        assert first_output < len(kinds) - 1
        running = next(e for e in node_events if e["data"].get("status") == "RUNNING")
        assert running["data"]["inputs"] is not None

    # The same events went out on the bus, with their ids as message ids.
    received: dict[str, dict[str, Any]] = {}
    deadline = asyncio.get_running_loop().time() + 10
    while len(received) < len(events):
        assert asyncio.get_running_loop().time() < deadline, "not every event reached the bus"
        message = await queue.get(no_ack=True, fail=False, timeout=5)
        if message is None:
            await asyncio.sleep(0.05)
            continue
        batch = json.loads(message.body)["events"]
        assert message.message_id == f"{batch[0]['event_id']}+{len(batch)}"
        kinds = sorted({document["type"] for document in batch})
        assert message.routing_key == (kinds[0] if len(kinds) == 1 else "events.mixed")
        assert message.headers is not None
        assert message.headers["event_types"] == ",".join(kinds)
        assert {document["user_id"] for document in batch} == {message.headers["user_id"]}
        for document in batch:
            if document["graph_exec_id"] == execution_id:
                received[document["event_id"]] = document
    assert received == {event["event_id"]: event for event in events}
    await channel.close()


async def test_concurrent_writers_and_relays_number_without_gaps_or_duplicates(
    engine: Infra, submit: Submit, wait_terminal: WaitTerminal
) -> None:
    """Events recorded by 20 concurrent transactions, numbered by three competing relays."""
    user = f"user-{uuid.uuid4().hex[:8]}"
    execution_id = await submit(engine, CHAIN, {"w": "x"}, user)
    await wait_terminal(engine, execution_id)

    async def record(index: int) -> None:
        async with engine.sessions.begin() as session:
            for part in range(5):
                await session.execute(
                    text(
                        "INSERT INTO executor.event_queue (execution_id, type, data,"
                        " created_at) VALUES (:e, 'test.event', CAST(:d AS jsonb), :t)"
                    ),
                    {
                        "e": execution_id,
                        "d": json.dumps({"writer": index, "part": part}),
                        "t": datetime.now(UTC),
                    },
                )
                await asyncio.sleep(0.001)

    publisher = Publisher(engine.connection)
    await publisher.start()
    relays = [
        EventRelay(engine.sessions, publisher, poll_interval_s=0.01, retention_s=3600, batch=7)
        for _ in range(3)
    ]

    async def spin(relay: EventRelay) -> None:
        for _ in range(60):
            await relay.tick()
            await asyncio.sleep(0.005)

    await asyncio.gather(*(record(i) for i in range(20)), *(spin(relay) for relay in relays))
    events = await _published_events(engine, execution_id)
    await publisher.close()

    assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
    written = [
        (e["data"]["writer"], e["data"]["part"]) for e in events if e["type"] == "test.event"
    ]
    assert sorted(written) == [(w, p) for w in range(20) for p in range(5)]
    # Within one transaction, events keep their recording order.
    for writer in range(20):
        parts = [part for w, part in written if w == writer]
        assert parts == sorted(parts)
    async with engine.sessions() as session:
        last = await session.scalar(
            select(EventCounter.last_seq).where(
                EventCounter.execution_id == uuid.UUID(execution_id)
            )
        )
    assert last == len(events)


async def test_an_execution_locked_by_a_long_transaction_holds_up_no_other_events(
    engine: Infra, submit: Submit, wait_terminal: WaitTerminal
) -> None:
    """A runner's long transaction (a node queuing 10,000 iterations) holds its execution's
    row; the events of every other execution are numbered and published meanwhile, and the
    held one's once the row is free."""
    user = f"user-{uuid.uuid4().hex[:8]}"
    held, other = [await submit(engine, CHAIN, {"w": w}, user) for w in ("a", "b")]
    for execution_id in (held, other):
        await wait_terminal(engine, execution_id)
        await _published_events(engine, execution_id)

    async def record(execution_id: str) -> None:
        async with engine.sessions.begin() as session:
            session.add(
                QueuedEvent(
                    execution_id=uuid.UUID(execution_id),
                    type="test.event",
                    data={},
                    created_at=datetime.now(UTC),
                )
            )

    await record(held)
    async with engine.sessions.begin() as holder:
        await holder.execute(
            select(Execution.id).where(Execution.id == uuid.UUID(held)).with_for_update()
        )
        await record(other)
        events = await _published_events(engine, other)
        assert events[-1]["type"] == "test.event"
    events = await _published_events(engine, held)
    assert events[-1]["type"] == "test.event"
    assert [event["seq"] for event in events] == list(range(1, len(events) + 1))


async def test_events_are_kept_by_execution_and_not_visible_to_another_user(
    engine: Infra, submit: Submit, wait_terminal: WaitTerminal
) -> None:
    """Replay reads one execution only; the servicer checks the owner (404 otherwise)."""
    user = f"user-{uuid.uuid4().hex[:8]}"
    first = await submit(engine, CHAIN, {"w": "a"}, user)
    second = await submit(engine, CHAIN, {"w": "b"}, user)
    await wait_terminal(engine, first)
    await wait_terminal(engine, second)
    events = await _published_events(engine, first)
    assert {event["graph_exec_id"] for event in events} == {first}
    tail = await _published_events(engine, second)
    async with engine.sessions() as session:
        after = await replay(session, execution_id=second, after_seq=3, limit=2)
    assert [event["seq"] for event in after] == [4, 5]
    assert after == tail[3:5]


async def test_node_executions_inserted_together_record_each_ones_events_in_order(
    engine: Infra,
) -> None:
    """One INSERT of several node executions (how a runner writes an inline chain): each
    one's lifecycle, outputs and status, one node after the other, as the row trigger of
    an INSERT followed by its UPDATEs would have recorded them."""
    moment = datetime.now(UTC)
    async with engine.sessions.begin() as session:
        execution, _row = await repository.create_execution(
            session,
            topology=engine.topology,
            user_id=f"user-{uuid.uuid4().hex[:8]}",
            graph_id="g-test",
            graph_version=1,
            graph=CHAIN,
            inputs={},
            credentials_inputs={},
        )
        common = {"execution_id": execution.id, "config": {}, "created_at": moment}
        rows = [
            {
                **common,
                "id": uuid.uuid4(),
                "node_id": "done",
                "block_id": "b1",
                "status": "COMPLETED",
                "inputs": {"x": 1},
                "outputs": [["a", 1], ["b", [2]]],
                "attempt": 1,
                "cost": 3,
                "started_at": moment,
                "ended_at": moment,
            },
            {
                **common,
                "id": uuid.uuid4(),
                "node_id": "failed",
                "block_id": "b2",
                "status": "FAILED",
                "inputs": {},
                "outputs": [["error", "boom"]],
                "error": "boom",
                "attempt": 2,
                "started_at": moment,
                "ended_at": moment,
            },
            {
                **common,
                "id": uuid.uuid4(),
                "node_id": "running",
                "block_id": "b3",
                "status": "RUNNING",
                "inputs": {"y": 2},
                "attempt": 1,
                "started_at": moment,
            },
            {
                **common,
                "id": uuid.uuid4(),
                "node_id": "waiting",
                "block_id": "b4",
                "status": "INCOMPLETE",
                "inputs": {},
            },
            {
                **common,
                "id": uuid.uuid4(),
                "node_id": "queued",
                "block_id": "b5",
                "status": "QUEUED",
                "inputs": {"z": 3},
            },
        ]
        await session.execute(insert(NodeExecution), rows)
        recorded = (
            await session.execute(
                select(QueuedEvent.type, QueuedEvent.data)
                .where(
                    QueuedEvent.execution_id == execution.id,
                    QueuedEvent.type != "execution.status",
                )
                .order_by(QueuedEvent.id)
            )
        ).all()

    def shape(kind: str, data: dict[str, Any]) -> tuple[Any, ...]:
        if kind == "node.output":
            return (data["node_id"], "output", data["pin"], data["value"])
        return (
            data["node_id"],
            data["status"],
            data["attempt"],
            data["inputs"],
            data["error"],
            data["cost"],
            data["started_at"] is not None,
            data["ended_at"] is not None,
        )

    assert [shape(kind, data) for kind, data in recorded] == [
        ("done", "QUEUED", 0, None, None, 0, False, False),
        ("done", "RUNNING", 1, {"x": 1}, None, 0, True, False),
        ("done", "output", "a", 1),
        ("done", "output", "b", [2]),
        ("done", "COMPLETED", 1, None, None, 3, True, True),
        ("failed", "QUEUED", 0, None, None, 0, False, False),
        ("failed", "RUNNING", 2, {}, None, 0, True, False),
        ("failed", "output", "error", "boom"),
        ("failed", "FAILED", 2, None, "boom", 0, True, True),
        ("running", "QUEUED", 0, None, None, 0, False, False),
        ("running", "RUNNING", 1, {"y": 2}, None, 0, True, False),
        ("waiting", "INCOMPLETE", 0, None, None, 0, False, False),
        ("queued", "QUEUED", 0, None, None, 0, False, False),
    ]


async def test_an_execution_inserted_started_records_the_statuses_it_went_through(
    engine: Infra,
) -> None:
    """The executions API writes an execution once, in the state its start left it
    (migration 0010): its events are those of an INSERT QUEUED and the UPDATEs after."""
    moment = datetime.now(UTC)

    def row(status: str, **fields: Any) -> Execution:
        built = repository.new_execution(
            user_id=f"user-{uuid.uuid4().hex[:8]}",
            graph_id="g-test",
            graph_version=1,
            graph=CHAIN,
            inputs={},
            credentials_inputs={},
        )
        built.status = status
        for name, value in fields.items():
            setattr(built, name, value)
        return built

    written = [
        row("QUEUED", parked=True),
        row("RUNNING", started_at=moment),
        row("COMPLETED", started_at=moment, ended_at=moment, node_count=0),
        row("FAILED", ended_at=moment, error="no graph"),
    ]
    async with engine.sessions.begin() as session:
        session.add_all(written)
        await session.flush()
        recorded = (
            await session.execute(
                select(QueuedEvent.execution_id, QueuedEvent.data)
                .where(QueuedEvent.execution_id.in_([e.id for e in written]))
                .order_by(QueuedEvent.id)
            )
        ).all()
        await session.rollback()

    def statuses(execution: Execution) -> list[tuple[Any, ...]]:
        return [
            (data["status"], data["started_at"] is not None, data["ended_at"] is not None)
            for execution_id, data in recorded
            if execution_id == execution.id
        ]

    assert [statuses(e) for e in written] == [
        [("QUEUED", False, False)],
        [("QUEUED", False, False), ("RUNNING", True, False)],
        [("QUEUED", False, False), ("RUNNING", True, False), ("COMPLETED", True, True)],
        [("QUEUED", False, False), ("FAILED", False, True)],
    ]


@contextlib.asynccontextmanager
async def _relays_held_off(shared: Infra, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[None]:
    """Hold the relay lock, so the scheduler's relay numbers and publishes nothing, and let
    relays ticked by this task act as its holder."""
    ours = asyncio.current_task()
    real = relay_module._relay_lock

    async def lock(session: AsyncSession) -> bool:
        return True if asyncio.current_task() is ours else await real(session)

    monkeypatch.setattr(relay_module, "_relay_lock", lock)
    async with shared.sessions.begin() as holder:
        await holder.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": RELAY_LOCK})
        yield


class _Publishes:
    """Records what the relay publishes; fails every publish while `failing`."""

    def __init__(self) -> None:
        self.failing = False
        self.events: list[dict[str, Any]] = []

    async def publish(self, exchange: str, routing_key: str, body: bytes, **_: Any) -> None:
        if self.failing:
            raise ConnectionError("broker gone")
        assert exchange == EVENTS_EXCHANGE
        self.events.extend(event_batches.decode(body))


async def _cursor(shared: Infra) -> int:
    async with shared.sessions() as session:
        return int(await session.scalar(select(EventRelayCursor.published_through)) or 0)


async def test_a_round_whose_publish_failed_is_published_again_with_the_same_numbers(
    engine: Infra, submit: Submit, wait_terminal: WaitTerminal, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Numbers are final once committed; the cursor moves only past what the broker took."""
    execution_id = await submit(engine, CHAIN, {"w": "x"}, f"user-{uuid.uuid4().hex[:8]}")
    await wait_terminal(engine, execution_id)
    before = len(await _published_events(engine, execution_id))
    publishes = _Publishes()
    relay = EventRelay(
        engine.sessions, cast(Publisher, publishes), poll_interval_s=1, retention_s=3600
    )
    async with _relays_held_off(engine, monkeypatch):
        async with engine.sessions.begin() as session:
            session.add_all(
                QueuedEvent(
                    execution_id=uuid.UUID(execution_id),
                    type="test.event",
                    data={"part": part},
                    created_at=datetime.now(UTC),
                )
                for part in range(3)
            )
        cursor = await _cursor(engine)
        publishes.failing = True
        with pytest.raises(ConnectionError):
            await relay.tick()
        assert await _cursor(engine) == cursor
        async with engine.sessions() as session:
            numbered = (
                await session.execute(
                    select(ExecutionEvent.seq, ExecutionEvent.data)
                    .where(
                        ExecutionEvent.execution_id == uuid.UUID(execution_id),
                        ExecutionEvent.id > cursor,
                    )
                    .order_by(ExecutionEvent.id)
                )
            ).all()
            queued = await session.scalar(
                select(QueuedEvent.id).where(QueuedEvent.execution_id == uuid.UUID(execution_id))
            )
        assert queued is None
        assert [(seq, data["part"]) for seq, data in numbered] == [
            (before + 1, 0),
            (before + 2, 1),
            (before + 3, 2),
        ]

        publishes.failing = False
        await relay.tick()
        mine = [e for e in publishes.events if e["graph_exec_id"] == execution_id]
        assert [(e["seq"], e["data"]["part"]) for e in mine] == [
            (seq, d["part"]) for seq, d in numbered
        ]
        assert [e["event_id"] for e in mine] == [f"{execution_id}:{seq}" for seq, _ in numbered]
        assert await _cursor(engine) > cursor


async def test_events_of_an_execution_that_does_not_exist_leave_the_queue(engine: Infra) -> None:
    """No owner to tell: the relay drops them instead of probing them every round."""
    orphan = uuid.uuid4()  # events have no foreign key (migration 0008)
    async with engine.sessions.begin() as session:
        session.add(
            QueuedEvent(
                execution_id=orphan, type="test.orphan", data={}, created_at=datetime.now(UTC)
            )
        )
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        async with engine.sessions() as session:
            queued = await session.scalar(
                select(QueuedEvent.id).where(QueuedEvent.execution_id == orphan)
            )
            logged = await session.scalar(
                select(ExecutionEvent.id).where(ExecutionEvent.execution_id == orphan)
            )
        assert logged is None
        if queued is None:
            break
        assert asyncio.get_running_loop().time() < deadline, "the orphan event stayed queued"
        await asyncio.sleep(0.05)


async def test_the_prune_deletes_published_events_older_than_the_retention(
    engine: Infra, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Published and recorded before the cutoff: deleted. Not published yet, or recent: kept."""
    execution_id = uuid.uuid4()
    now = datetime.now(UTC)
    old = now - timedelta(hours=2)
    async with _relays_held_off(engine, monkeypatch):
        async with engine.sessions.begin() as session:
            logged = [
                ExecutionEvent(
                    execution_id=execution_id,
                    seq=seq,
                    type="test.prune",
                    data={},
                    created_at=created_at,
                )
                for seq, created_at in enumerate([old, old, now, old], start=1)
            ]
            session.add_all(logged)
            await session.flush()
            # The first three published, the last not yet.
            await session.execute(update(EventRelayCursor).values(published_through=logged[2].id))
        relay = EventRelay(
            engine.sessions, Publisher(engine.connection), poll_interval_s=1, retention_s=3600
        )
        await relay._prune()
    async with engine.sessions() as session:
        kept = (
            await session.scalars(
                select(ExecutionEvent.seq)
                .where(ExecutionEvent.execution_id == execution_id)
                .order_by(ExecutionEvent.seq)
            )
        ).all()
    assert kept == [3, 4]
