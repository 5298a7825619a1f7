"""Engine semantics on real graphs, run by the scheduler and a runner on the real bus and
database: static links, pin paths, loops bounded by the node execution limit, retries,
timeouts, the wall-clock limit, the per-user running limit, and stop."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable
from datetime import timedelta
from typing import Any

from sqlalchemy import delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from agentloom_blocks.registry import load_blocks
from agentloom_common.bus import SCHEDULER_EXCHANGE
from agentloom_executor import repository, scheduling
from agentloom_executor.graph import GraphSnapshot
from agentloom_executor.messages import ExecutionRequested
from agentloom_executor.server import Infra
from agentloom_executor.starts import GroupStarter
from agentloom_executor.status import Status
from agentloom_executor.tables import Execution, NodeExecution, OutboxMessage

Submit = Callable[[Infra, dict[str, Any], dict[str, Any], str], Awaitable[str]]
WaitTerminal = Callable[[Infra, str], Awaitable[Execution]]
Stop = Callable[[Infra, str], Awaitable[None]]


def node(
    node_id: str, block_id: str, config: dict[str, Any] | None = None, **defaults: Any
) -> dict[str, Any]:
    return {"id": node_id, "block_id": block_id, "input_default": defaults, "config": config or {}}


def link(
    source: str, source_name: str, sink: str, sink_name: str, static: bool = False
) -> dict[str, Any]:
    return {
        "source_id": source,
        "source_name": source_name,
        "sink_id": sink,
        "sink_name": sink_name,
        "is_static": static,
    }


def user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


async def nodes_of(
    engine: Infra, execution_id: str, node_id: str | None = None
) -> list[NodeExecution]:
    async with engine.sessions() as session:
        query = select(NodeExecution).where(NodeExecution.execution_id == uuid.UUID(execution_id))
        if node_id is not None:
            query = query.where(NodeExecution.node_id == node_id)
        return list((await session.scalars(query.order_by(NodeExecution.seq))).all())


async def wait_status(engine: Infra, execution_id: str, status: str, timeout_s: float = 10) -> None:
    for _ in range(int(timeout_s / 0.05)):
        async with engine.sessions() as session:
            execution = await session.get(Execution, uuid.UUID(execution_id))
            if execution is not None and execution.status == status:
                return
        await asyncio.sleep(0.05)
    raise AssertionError(f"execution never reached {status}")


async def test_a_static_link_feeds_every_run_of_the_sink(
    engine: Infra, submit: Submit, wait_terminal: WaitTerminal
) -> None:
    graph = {
        "nodes": [
            node("in", "text_input_block", name="csv"),
            node("split", "text_split_block"),
            node("each", "step_through_items_block"),
            node("const", "text_template_block", template="K"),
            node("join", "text_template_block", template="{{ c }}-{{ x }}"),
            node("out", "output_block", name="joined"),
        ],
        "links": [
            link("in", "text", "split", "text"),
            link("split", "texts", "each", "items"),
            link("each", "item", "join", "x"),
            link("const", "text", "join", "c", static=True),
            link("join", "text", "out", "value"),
        ],
    }
    execution = await wait_terminal(engine, await submit(engine, graph, {"csv": "a,b,c"}, user()))
    assert execution.status == "COMPLETED", execution.error
    assert sorted(execution.outputs["joined"]) == ["K-a", "K-b", "K-c"]


async def test_pin_paths_select_from_outputs_and_assemble_inputs(
    engine: Infra, submit: Submit, wait_terminal: WaitTerminal
) -> None:
    graph = {
        "nodes": [
            node("in", "text_input_block", name="csv"),
            node("split", "text_split_block"),
            node("t", "text_template_block", template="{{ first }}/{{ last }}"),
            node("out", "output_block", name="r"),
        ],
        "links": [
            link("in", "text", "split", "text"),
            link("split", "texts_$_0", "t", "values_#_first"),
            link("split", "texts_$_2", "t", "values_#_last"),
            link("t", "text", "out", "value"),
        ],
    }
    execution = await wait_terminal(engine, await submit(engine, graph, {"csv": "x,y,z"}, user()))
    assert execution.status == "COMPLETED", execution.error
    assert execution.outputs == {"r": ["x/z"]}
    (t,) = await nodes_of(engine, str(execution.id), "t")
    assert t.inputs["values"] == {"first": "x", "last": "z"}


async def test_a_path_that_selects_nothing_carries_nothing(
    engine: Infra, submit: Submit, wait_terminal: WaitTerminal
) -> None:
    graph = {
        "nodes": [
            node("in", "text_input_block", name="csv"),
            node("split", "text_split_block"),
            node("t", "text_template_block", template="{{ v }}"),
        ],
        "links": [link("in", "text", "split", "text"), link("split", "texts_$_5", "t", "v")],
    }
    execution = await wait_terminal(engine, await submit(engine, graph, {"csv": "x,y"}, user()))
    assert execution.status == "COMPLETED"
    assert await nodes_of(engine, str(execution.id), "t") == []


async def test_a_loop_ends_at_the_node_execution_limit(
    engine: Infra, submit: Submit, wait_terminal: WaitTerminal
) -> None:
    graph = {
        "nodes": [
            node("in", "text_input_block", name="seed"),
            node("a", "pass_through_block"),
            node("b", "pass_through_block"),
        ],
        "links": [
            link("in", "text", "a", "value"),
            link("a", "value", "b", "value"),
            link("b", "value", "a", "value"),
        ],
    }
    execution = await wait_terminal(engine, await submit(engine, graph, {"seed": "s"}, user()))
    assert execution.status == "FAILED"
    assert "node execution limit" in (execution.error or "")
    assert execution.node_execution_total == 50  # the test settings' limit


async def test_retryable_errors_are_retried_up_to_the_policy(
    engine: Infra, submit: Submit, wait_terminal: WaitTerminal
) -> None:
    graph = {
        "nodes": [node("r", "raise_error_block", message="flaky", retryable=True)],
        "links": [],
    }
    execution = await wait_terminal(engine, await submit(engine, graph, {}, user()))
    assert execution.status == "FAILED"
    (r,) = await nodes_of(engine, str(execution.id))
    assert r.attempt == 3 and r.status == "FAILED" and r.error == "flaky"


async def test_a_node_retry_policy_overrides_the_default(
    engine: Infra, submit: Submit, wait_terminal: WaitTerminal
) -> None:
    once = {"retry": {"max_attempts": 1}}
    graph = {
        "nodes": [node("r", "raise_error_block", once, message="x", retryable=True)],
        "links": [],
    }
    execution = await wait_terminal(engine, await submit(engine, graph, {}, user()))
    (r,) = await nodes_of(engine, str(execution.id))
    assert execution.status == "FAILED" and r.attempt == 1


async def test_a_non_retryable_error_is_not_retried(
    engine: Infra, submit: Submit, wait_terminal: WaitTerminal
) -> None:
    graph = {"nodes": [node("r", "raise_error_block", message="bad", retryable=False)], "links": []}
    execution = await wait_terminal(engine, await submit(engine, graph, {}, user()))
    (r,) = await nodes_of(engine, str(execution.id))
    assert execution.status == "FAILED" and r.attempt == 1


async def test_a_node_timeout_fails_the_node(
    engine: Infra, submit: Submit, wait_terminal: WaitTerminal
) -> None:
    graph = {
        "nodes": [node("slow", "llm_call_block", {"timeout_s": 0.5}, prompt="[[slow:5]] hi")],
        "links": [],
    }
    execution = await wait_terminal(engine, await submit(engine, graph, {}, user()))
    assert execution.status == "FAILED"
    assert "timed out after 0.5s" in (execution.error or "")


async def test_an_execution_past_its_wall_clock_limit_fails_and_stops_its_blocks(
    engine: Infra, submit: Submit, wait_terminal: WaitTerminal
) -> None:
    graph = {"nodes": [node("slow", "llm_call_block", prompt="[[slow:8]] hi")], "links": []}
    execution_id = await submit(engine, graph, {}, user())
    await wait_status(engine, execution_id, "RUNNING")
    async with engine.sessions.begin() as session:
        await session.execute(
            update(Execution)
            .where(Execution.id == uuid.UUID(execution_id))
            .values(deadline_at=Execution.started_at)
        )
    execution = await wait_terminal(engine, execution_id)
    assert execution.status == "FAILED"
    assert "time limit" in (execution.error or "")
    (slow,) = await nodes_of(engine, execution_id)
    assert slow.status == "CANCELLED"


async def test_a_users_extra_executions_wait_queued_in_order(
    engine: Infra, submit: Submit, wait_terminal: WaitTerminal
) -> None:
    someone = user()
    graph = {"nodes": [node("slow", "llm_call_block", prompt="[[slow:1]] hi")], "links": []}
    ids = [await submit(engine, graph, {}, someone) for _ in range(4)]
    await asyncio.sleep(0.5)
    async with engine.sessions() as session:
        statuses = [
            (await session.get(Execution, uuid.UUID(i))).status  # type: ignore[union-attr]
            for i in ids
        ]
    assert statuses.count("RUNNING") == 2  # the test settings' per-user limit
    assert statuses[2:] == ["QUEUED", "QUEUED"]
    finished = [await wait_terminal(engine, i) for i in ids]
    assert [e.status for e in finished] == ["COMPLETED"] * 4
    first_end = min(e.ended_at for e in finished[:2] if e.ended_at)
    assert all(e.started_at and e.started_at >= first_end for e in finished[2:])
    assert finished[2].started_at <= finished[3].started_at  # type: ignore[operator]


async def test_a_start_gives_way_to_an_older_parked_execution(engine: Infra) -> None:
    """Starts driven by hand in one transaction rolled back at the end (nothing reaches the
    bus), with a limit of one running execution: a request for a newer execution, while an
    older one is parked and the slot free, parks the newer one and asks for the older; the
    older one starts; the newer one, asked again, stays parked (the slot is taken)."""
    graph = {"nodes": [node("slow", "llm_call_block", prompt="hi")], "links": []}
    limits = scheduling.Limits(max_running_per_user=1)
    someone = user()
    async with engine.sessions() as session:
        older = await _unrequested_execution(session, engine, graph, someone, parked=True)
        newer = await _unrequested_execution(session, engine, graph, someone, parked=False)

        assert await _start(session, engine, newer, limits) == [str(older.id)]
        assert (newer.status, newer.parked) == ("QUEUED", True)
        assert await _start(session, engine, older, limits) == []
        assert (older.status, older.parked) == ("RUNNING", False)
        assert await _start(session, engine, newer, limits) == []
        assert (newer.status, newer.parked) == ("QUEUED", True)
        await session.rollback()


async def test_a_start_waits_for_an_older_execution_whose_request_is_on_its_way(
    engine: Infra,
) -> None:
    """Requests reach the partitions in any order: with one slot, the newer execution's
    request arriving first parks it without asking for anything (the older one's own
    request is on its way); the older one then starts; with two slots both start."""
    graph = {"nodes": [node("slow", "llm_call_block", prompt="hi")], "links": []}
    someone = user()
    async with engine.sessions() as session:
        older = await _unrequested_execution(session, engine, graph, someone, parked=False)
        newer = await _unrequested_execution(session, engine, graph, someone, parked=False)
        one = scheduling.Limits(max_running_per_user=1)
        assert await _start(session, engine, newer, one) == []
        assert (newer.status, newer.parked) == ("QUEUED", True)
        assert await _start(session, engine, older, one) == []
        assert older.status == "RUNNING" and newer.status == "QUEUED"
        await session.rollback()
    async with engine.sessions() as session:
        older = await _unrequested_execution(session, engine, graph, someone, parked=False)
        newer = await _unrequested_execution(session, engine, graph, someone, parked=False)
        two = scheduling.Limits(max_running_per_user=2)
        assert await _start(session, engine, newer, two) == []
        assert await _start(session, engine, older, two) == []
        assert (older.status, newer.status) == ("RUNNING", "RUNNING")
        await session.rollback()


def _starter(engine: Infra, limits: scheduling.Limits) -> GroupStarter:
    return GroupStarter(engine.sessions, engine.outbox, load_blocks(), engine.topology, limits)


def _build(user_id: str, graph: dict[str, Any], key: str | None = None) -> Callable[[], Execution]:
    def build() -> Execution:
        return repository.new_execution(
            user_id=user_id,
            graph_id="g-test",
            graph_version=1,
            graph=graph,
            inputs={},
            credentials_inputs={},
            idempotency_key=key,
        )

    return build


async def test_executions_requested_together_start_in_one_transaction(
    engine: Infra, wait_terminal: WaitTerminal
) -> None:
    """The executions API's group start: twenty executions of one user asked for at once
    are written and started in one transaction, the running limit counted across them
    (the oldest five run, the rest are parked and start as slots free)."""
    graph = {"nodes": [node("a", "pass_through_block", value=7)], "links": []}
    someone = user()
    starter = _starter(engine, scheduling.Limits(max_running_per_user=5))
    snapshot = GraphSnapshot.from_json(graph)
    created = await asyncio.gather(
        *(starter.create(someone, _build(someone, graph), snapshot) for _ in range(20))
    )
    assert (starter.transactions, starter.started) == (1, 20)
    assert [(e.status, e.parked) for e in created] == [("RUNNING", False)] * 5 + [
        ("QUEUED", True)
    ] * 15
    ended = [await wait_terminal(engine, str(e.id)) for e in created]
    assert [(e.status, e.outputs) for e in ended] == [("COMPLETED", {})] * 20


async def test_group_slots_read_once_tell_each_start_what_a_read_per_start_would(
    engine: Infra,
) -> None:
    """`GroupSlots` reads a user's slots once for a group and keeps them in memory: each
    start of the group must be told what `_slots` reads for it once every earlier start of
    the group is written, whatever the limit and whatever the user already has running,
    parked, or on its way."""
    graph = {"nodes": [node("slow", "llm_call_block", prompt="hi")], "links": []}
    for limit in (1, 2, 3, 6):
        someone = user()
        async with engine.sessions() as session:
            running = await _unrequested_execution(session, engine, graph, someone, parked=False)
            running.status = "RUNNING"
            await _unrequested_execution(session, engine, graph, someone, parked=True)
            await _unrequested_execution(session, engine, graph, someone, parked=False)
            await session.flush()
            group = await scheduling.GroupSlots.read(session, someone, limit)
            outcomes = []
            for _ in range(6):
                execution = _build(someone, graph)()
                assert group.slots(execution) == await scheduling._slots(session, execution, limit)
                await scheduling.Engine(
                    session,
                    execution,
                    GraphSnapshot.from_json(graph),
                    load_blocks(),
                    engine.topology,
                    scheduling.Limits(max_running_per_user=limit),
                ).start(user_locked=True, group=group)
                group.record(execution)
                session.add(execution)
                await session.flush()
                outcomes.append(execution.status)
            # Two older ones are owed slots first: with 6 slots, 3 of the group start.
            assert outcomes.count("RUNNING") == max(0, limit - 3), (limit, outcomes)
            await session.rollback()


async def test_a_group_start_that_fails_is_run_again_one_by_one(engine: Infra) -> None:
    """An idempotency key taken twice in one batch fails the batch's transaction: each
    execution is then written in its own, and only the one at fault gets the error."""
    graph = {"nodes": [node("a", "pass_through_block", value=7)], "links": []}
    someone = user()
    starter = _starter(engine, scheduling.Limits(max_running_per_user=50))
    snapshot = GraphSnapshot.from_json(graph)
    first, again, other = await asyncio.gather(
        starter.create(someone, _build(someone, graph, "k"), snapshot),
        starter.create(someone, _build(someone, graph, "k"), snapshot),
        starter.create(someone, _build(someone, graph), snapshot),
        return_exceptions=True,
    )
    assert isinstance(first, Execution) and isinstance(other, Execution)
    assert isinstance(again, IntegrityError)
    assert (first.status, other.status) == ("RUNNING", "RUNNING")
    async with engine.sessions() as session:
        stored = await session.scalars(select(Execution.id).where(Execution.user_id == someone))
        assert sorted(stored.all()) == sorted([first.id, other.id])


async def _start(
    session: AsyncSession, engine: Infra, execution: Execution, limits: scheduling.Limits
) -> list[str]:
    """Apply an `execution.requested` by hand; the executions it asks for in turn."""
    locked = await repository.lock_execution(session, str(execution.id), with_graph=True)
    assert locked is not None
    rows = await scheduling.Engine(
        session,
        locked,
        GraphSnapshot.from_json(locked.graph),
        load_blocks(),
        engine.topology,
        limits,
    ).start()
    return _requested(rows)


async def _unrequested_execution(
    session: AsyncSession, engine: Infra, graph: dict[str, Any], user_id: str, *, parked: bool
) -> Execution:
    """A QUEUED execution whose request is not sent, and which the sweeper leaves alone."""
    execution, request = await repository.create_execution(
        session,
        topology=engine.topology,
        user_id=user_id,
        graph_id="g-test",
        graph_version=1,
        graph=graph,
        inputs={},
        credentials_inputs={},
    )
    await session.execute(delete(OutboxMessage).where(OutboxMessage.id == request.id))
    await session.execute(
        update(Execution)
        .where(Execution.id == execution.id)
        .values(parked=parked, requested_at=repository.now() + timedelta(hours=1))
    )
    stored = await session.get(Execution, execution.id)
    assert stored is not None
    return stored


def _requested(rows: list[OutboxMessage]) -> list[str]:
    """The executions these outbox rows ask the scheduler to start."""
    return [
        ExecutionRequested.model_validate_json(row.body).execution_id
        for row in rows
        if row.exchange == SCHEDULER_EXCHANGE
    ]


async def test_stop_a_queued_execution_before_it_runs(
    engine: Infra, submit: Submit, wait_terminal: WaitTerminal, stop: Stop
) -> None:
    someone = user()
    graph = {"nodes": [node("slow", "llm_call_block", prompt="[[slow:1]] hi")], "links": []}
    ids = [await submit(engine, graph, {}, someone) for _ in range(3)]
    await asyncio.sleep(0.3)
    await stop(engine, ids[2])
    finished = await wait_terminal(engine, ids[2])
    assert finished.status == "CANCELLED" and finished.started_at is None
    assert await nodes_of(engine, ids[2]) == []
    for i in ids[:2]:
        assert (await wait_terminal(engine, i)).status == "COMPLETED"


async def test_a_condition_fires_only_one_branch(
    engine: Infra, submit: Submit, wait_terminal: WaitTerminal
) -> None:
    graph = {
        "nodes": [
            node("n", "number_input_block", name="n"),
            node("cond", "condition_block", operator=">", value2=10),
            node("big", "text_template_block", template="big {{ v }}"),
            node("small", "text_template_block", template="small {{ v }}"),
            node("out", "output_block", name="said"),
        ],
        "links": [
            link("n", "number", "cond", "value1"),
            link("cond", "yes_output", "big", "v"),
            link("cond", "no_output", "small", "v"),
            link("big", "text", "out", "value"),
            link("small", "text", "out", "value"),
        ],
    }
    for value, said, silent in ((42, "big 42", "small"), (3, "small 10", "big")):
        execution_id = await submit(engine, graph, {"n": value}, user())
        execution = await wait_terminal(engine, execution_id)
        assert execution.status == "COMPLETED", execution.error
        assert execution.outputs == {"said": [said]}
        assert await nodes_of(engine, execution_id, silent) == []


async def test_a_loop_with_a_condition_counts_down_and_ends(
    engine: Infra, submit: Submit, wait_terminal: WaitTerminal
) -> None:
    """n -> cond(n > 0) -yes-> minus one -> back to cond; -no-> output."""
    graph = {
        "nodes": [
            node("n", "number_input_block", name="n"),
            node("cond", "condition_block", operator=">", value2=0),
            node("dec", "calculator_block", operation="subtract", b=1),
            node("out", "output_block", name="done"),
        ],
        "links": [
            link("n", "number", "cond", "value1"),
            link("cond", "yes_output", "dec", "a"),
            link("dec", "result", "cond", "value1"),
            link("cond", "no_output", "out", "value"),
        ],
    }
    execution_id = await submit(engine, graph, {"n": 4}, user())
    execution = await wait_terminal(engine, execution_id)
    assert execution.status == "COMPLETED", execution.error
    assert execution.outputs == {"done": [0]}
    assert len(await nodes_of(engine, execution_id, "dec")) == 4


async def test_memory_blocks_keep_a_value_for_the_user(
    engine: Infra, submit: Submit, wait_terminal: WaitTerminal
) -> None:
    someone = user()
    write = {
        "nodes": [node("w", "persist_value_block", key="fav", value="teal")],
        "links": [],
    }
    execution = await wait_terminal(engine, await submit(engine, write, {}, someone))
    assert execution.status == "COMPLETED", execution.error
    read = {
        "nodes": [
            node("r", "retrieve_value_block", key="fav"),
            node("out", "output_block", name="fav"),
        ],
        "links": [link("r", "value", "out", "value")],
    }
    execution = await wait_terminal(engine, await submit(engine, read, {}, someone))
    assert execution.outputs == {"fav": ["teal"]}
    other = await wait_terminal(engine, await submit(engine, read, {}, user()))
    assert other.outputs.get("fav") in (None, [None])


async def _committed_running(engine: Infra, graph: dict[str, Any], user_id: str) -> Execution:
    """A RUNNING top-level execution of `user_id`, committed (no node of it runs)."""
    async with engine.sessions.begin() as session:
        execution = await _unrequested_execution(session, engine, graph, user_id, parked=False)
        execution.status = Status.RUNNING.value
        execution.started_at = repository.now()
    return execution


async def _forget(engine: Infra, *executions: Execution) -> None:
    async with engine.sessions.begin() as session:
        ids = [execution.id for execution in executions]
        await session.execute(delete(Execution).where(Execution.id.in_(ids)))


async def _end(session: AsyncSession, engine: Infra, execution: Execution) -> list[str]:
    """End `execution` as a runner does: lock, end, ask for the next parked one."""
    locked = await repository.lock_execution(session, str(execution.id))
    assert locked is not None
    await repository.end_execution(session, locked, Status.COMPLETED, engine.topology)
    return _requested(await scheduling.request_next_waiting(session, engine.topology, locked))


async def test_an_end_sees_what_a_start_parked_while_it_ended(engine: Infra) -> None:
    """One slot, taken. A start parks its execution and, until it commits, holds the
    running one locked; the end of that one waits for the start's commit, then asks for
    the execution just parked (with no user lock on the end's side, it would otherwise
    read before the start committed, and the parked one would wait for nothing)."""
    graph = {"nodes": [node("slow", "llm_call_block", prompt="hi")], "links": []}
    one = scheduling.Limits(max_running_per_user=1)
    someone = user()
    running = await _committed_running(engine, graph, someone)
    async with engine.sessions() as starting, engine.sessions() as ending:
        waiting = await _unrequested_execution(starting, engine, graph, someone, parked=False)
        assert await _start(starting, engine, waiting, one) == []
        assert (waiting.status, waiting.parked) == ("QUEUED", True)
        end = asyncio.create_task(_end(ending, engine, running))
        await asyncio.sleep(0.3)
        assert not end.done()  # the start holds the running execution
        await starting.commit()
        assert await asyncio.wait_for(end, 5) == [str(waiting.id)]
        await ending.rollback()
    await _forget(engine, running, waiting)


async def test_a_start_waits_for_an_end_in_flight_and_takes_its_slot(engine: Infra) -> None:
    """One slot, taken by an execution that is ending at this moment (not committed): a
    start that would park waits for that end, then counts the slot free and starts."""
    graph = {"nodes": [node("slow", "llm_call_block", prompt="hi")], "links": []}
    one = scheduling.Limits(max_running_per_user=1)
    someone = user()
    running = await _committed_running(engine, graph, someone)
    async with engine.sessions.begin() as session:
        waiting = await _unrequested_execution(session, engine, graph, someone, parked=False)
    async with engine.sessions() as ending, engine.sessions() as starting:
        assert await _end(ending, engine, running) == []
        start = asyncio.create_task(_start(starting, engine, waiting, one))
        await asyncio.sleep(0.3)
        assert not start.done()  # waits for the end's commit
        await ending.commit()
        assert await asyncio.wait_for(start, 5) == []
        started = await starting.get(Execution, waiting.id)
        assert started is not None
        assert (started.status, started.parked) == ("RUNNING", False)
        await starting.rollback()
    await _forget(engine, running, waiting)
