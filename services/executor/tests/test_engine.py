"""The scheduler and runner on the real bus and database: data flow, idempotent effects
under duplicated messages, the outbox relay, and poison messages."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from typing import Any, cast

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.exc import DBAPIError

from agentloom_common.bus import (
    DEAD_QUEUE,
    JOBS_EXCHANGE,
    JOBS_ROUTING_KEY,
    SCHEDULER_EXCHANGE,
    Publisher,
)
from agentloom_executor import outbox, repository, scheduling
from agentloom_executor.messages import CancelExecution, NodeFinished, NodeJob
from agentloom_executor.server import Infra
from agentloom_executor.tables import Execution, NodeExecution, OutboxMessage

Submit = Callable[[Infra, dict[str, Any], dict[str, Any], str], Awaitable[str]]
WaitTerminal = Callable[[Infra, str], Awaitable[Execution]]
WaitNumbered = Callable[[Infra, str], Awaitable[None]]

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


def _user() -> str:
    return f"user-{uuid.uuid4().hex[:8]}"


async def _nodes_of(shared: Infra, execution_id: str) -> list[NodeExecution]:
    """The execution's node executions, in creation order."""
    async with shared.sessions() as session:
        query = (
            select(NodeExecution)
            .where(NodeExecution.execution_id == uuid.UUID(execution_id))
            .order_by(NodeExecution.seq)
        )
        return list((await session.scalars(query)).all())


async def _charges(shared: Infra, user_id: str) -> int:
    async with shared.sessions() as session:
        return int(
            await session.scalar(
                text(
                    "SELECT count(*) FROM billing.transactions"
                    " WHERE user_id = :u AND kind = 'usage'"
                ),
                {"u": user_id},
            )
            or 0
        )


async def test_chain_completes_with_graph_outputs(
    engine: Infra, submit: Submit, wait_terminal: WaitTerminal
) -> None:
    execution_id = await submit(engine, CHAIN, {"w": "hi"}, _user())
    execution = await wait_terminal(engine, execution_id)
    assert execution.status == "COMPLETED"
    assert execution.outputs == {"result": ["<hi>"]}
    assert execution.node_count == 3


async def test_a_runner_runs_the_node_it_queued_itself_without_a_job(
    engine: Infra, submit: Submit, wait_terminal: WaitTerminal, wait_numbered: WaitNumbered
) -> None:
    """Eager local chaining: the runner that finishes `in` claims `t` in the same
    transaction and runs it next, and so on; only the first node goes out as a job. Each
    node execution is still recorded QUEUED -> RUNNING -> COMPLETED, once."""
    channel = await engine.connection.channel()
    copies = await channel.declare_queue(exclusive=True, auto_delete=True)
    await copies.bind(JOBS_EXCHANGE, JOBS_ROUTING_KEY)  # a copy of every job sent
    execution_id = await submit(engine, CHAIN, {"w": "eager"}, _user())
    execution = await wait_terminal(engine, execution_id)
    assert execution.status == "COMPLETED"
    assert execution.outputs == {"result": ["<eager>"]}
    await wait_numbered(engine, execution_id)
    jobs, events = await _jobs_and_events(engine, execution_id, copies)
    await channel.close()
    nodes = await _nodes_of(engine, execution_id)
    assert [n.node_id for n in nodes] == ["in", "t", "out"]
    assert jobs == [str(nodes[0].id)]
    assert all(n.status == "COMPLETED" and n.attempt == 1 for n in nodes)
    for node_id in ("t", "out"):
        seen = [
            status for kind, node, status in events if kind == "node.status" and node == node_id
        ]
        assert seen == ["QUEUED", "RUNNING", "COMPLETED"], (node_id, seen)


INLINE_CHAIN = {
    "nodes": [
        {"id": "in", "block_id": "text_input_block", "input_default": {"name": "w"}},
        {"id": "parse", "block_id": "json_parse_block", "input_default": {}},
        {"id": "pass", "block_id": "pass_through_block", "input_default": {}},
        {"id": "out", "block_id": "output_block", "input_default": {"name": "result"}},
    ],
    "links": [
        {"source_id": "in", "source_name": "text", "sink_id": "parse", "sink_name": "json_string"},
        {"source_id": "parse", "source_name": "data", "sink_id": "pass", "sink_name": "value"},
        {"source_id": "pass", "source_name": "value", "sink_id": "out", "sink_name": "value"},
    ],
}


async def _jobs_and_events(
    engine: Infra, execution_id: str, copies: Any
) -> tuple[list[str], list[tuple[str, str, str | None]]]:
    jobs: list[str] = []
    while (message := await copies.get(no_ack=True, fail=False, timeout=1)) is not None:
        job = NodeJob.model_validate_json(message.body)
        if job.execution_id == execution_id:
            jobs.append(job.node_execution_id)
    async with engine.sessions() as session:
        events = (
            await session.execute(
                text(
                    "SELECT type, data->>'node_id', data->>'status' FROM executor.execution_events"
                    " WHERE execution_id = :e AND type LIKE 'node.%' ORDER BY seq"
                ),
                {"e": execution_id},
            )
        ).all()
    return jobs, [(kind, node, status) for kind, node, status in events]


async def test_a_chain_of_inline_blocks_needs_one_job_and_reports_every_event(
    engine: Infra, submit: Submit, wait_terminal: WaitTerminal, wait_numbered: WaitNumbered
) -> None:
    """Pure, free blocks after the first node run on the runner that queued them (within
    its transaction, each row written once in its final state): one job in all, and each
    node still reports QUEUED, RUNNING, its outputs and COMPLETED, in that order."""
    channel = await engine.connection.channel()
    copies = await channel.declare_queue(exclusive=True, auto_delete=True)
    await copies.bind(JOBS_EXCHANGE, JOBS_ROUTING_KEY)
    execution_id = await submit(engine, INLINE_CHAIN, {"w": '{"a": [1, 2]}'}, _user())
    execution = await wait_terminal(engine, execution_id)
    assert execution.status == "COMPLETED"
    assert execution.outputs == {"result": [{"a": [1, 2]}]}
    assert execution.node_count == 4
    await wait_numbered(engine, execution_id)
    jobs, events = await _jobs_and_events(engine, execution_id, copies)
    await channel.close()
    assert len(jobs) == 1
    for node_id in ("parse", "pass", "out"):
        seen = [(kind, status) for kind, node, status in events if node == node_id]
        assert seen == [
            ("node.status", "QUEUED"),
            ("node.status", "RUNNING"),
            ("node.output", None),
            ("node.status", "COMPLETED"),
        ], (node_id, seen)
    nodes = await _nodes_of(engine, execution_id)
    assert all(n.attempt == 1 and n.applied and n.ended_at is not None for n in nodes)
    assert all(n.started_at is not None and n.started_at <= n.ended_at for n in nodes)


async def test_an_inline_job_sent_again_finds_its_node_done(
    engine: Infra, submit: Submit, wait_terminal: WaitTerminal
) -> None:
    """The job of an inline block is claimed, run and finished in one transaction. Sent
    again after the execution ended, naming its block (as the scheduler now sends it) or
    not (as before), it finds the node done: nothing runs twice, nothing changes."""
    execution_id = await submit(engine, INLINE_CHAIN, {"w": '{"a": 1}'}, _user())
    execution = await wait_terminal(engine, execution_id)
    assert execution.status == "COMPLETED" and execution.outputs == {"result": [{"a": 1}]}
    before = await _nodes_of(engine, execution_id)
    first = next(node for node in before if node.node_id == "in")
    for block_id in ("text_input_block", None):
        job = NodeJob(execution_id=execution_id, node_execution_id=str(first.id), block_id=block_id)
        await engine.publisher.publish(
            JOBS_EXCHANGE,
            JOBS_ROUTING_KEY,
            job.model_dump_json().encode(),
            message_id=job.message_id,
        )
    await asyncio.sleep(1.0)
    after = await _nodes_of(engine, execution_id)

    def state(nodes: list[NodeExecution]) -> list[tuple[Any, ...]]:
        return [(n.id, n.status, n.attempt, n.outputs, n.ended_at) for n in nodes]

    assert state(after) == state(before)
    assert all(node.attempt == 1 for node in after)


FAN_OUT = {
    "nodes": [
        {"id": "each", "block_id": "step_through_items_block", "input_default": {}},
        {"id": "pass", "block_id": "pass_through_block", "input_default": {}},
        {"id": "out", "block_id": "output_block", "input_default": {"name": "items"}},
    ],
    "links": [
        {"source_id": "each", "source_name": "item", "sink_id": "pass", "sink_name": "value"},
        {"source_id": "pass", "source_name": "value", "sink_id": "out", "sink_name": "value"},
    ],
}


async def test_a_fan_out_of_inline_blocks_runs_each_branch_exactly_once(
    engine: Infra,
    submit: Submit,
    wait_terminal: WaitTerminal,
    wait_numbered: WaitNumbered,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A runner runs the branches a result queues itself (here at most 3 kept, so most go
    out as jobs) and claims waiting ones of the same execution in batches; the jobs sent
    for branches it took find them done. Every branch ran once (one RUNNING event,
    attempt 1) and every value arrived once."""
    monkeypatch.setattr(scheduling, "MAX_KEPT", 3)
    width = 20  # 41 node executions: within the fixture's limit of 50
    graph = json.loads(json.dumps(FAN_OUT))
    graph["nodes"][0]["input_default"] = {"items": list(range(width))}
    execution_id = await submit(engine, graph, {}, _user())
    execution = await wait_terminal(engine, execution_id)
    assert execution.status == "COMPLETED", execution.error
    assert sorted(execution.outputs["items"]) == list(range(width))
    assert execution.node_count == 1 + 2 * width
    nodes = await _nodes_of(engine, execution_id)
    await wait_numbered(engine, execution_id)
    async with engine.sessions() as session:
        running = (
            await session.execute(
                text(
                    "SELECT data->>'node_exec_id', count(*) FROM executor.execution_events"
                    " WHERE execution_id = :e AND type = 'node.status'"
                    " AND data->>'status' = 'RUNNING' GROUP BY 1"
                ),
                {"e": execution_id},
            )
        ).all()
    assert len(nodes) == 1 + 2 * width
    assert all(n.status == "COMPLETED" and n.attempt == 1 and n.applied for n in nodes)
    assert len(running) == len(nodes) and all(count == 1 for _, count in running)
    passed = sorted(n.outputs[0][1] for n in nodes if n.node_id == "pass")
    assert passed == list(range(width))


async def test_an_inline_block_that_fails_unhandled_fails_the_execution_there(
    engine: Infra, submit: Submit, wait_terminal: WaitTerminal
) -> None:
    execution_id = await submit(engine, INLINE_CHAIN, {"w": "not json"}, _user())
    execution = await wait_terminal(engine, execution_id)
    assert execution.status == "FAILED"
    assert "parse" in (execution.error or "") and "invalid JSON" in (execution.error or "")
    nodes = await _nodes_of(engine, execution_id)
    assert {n.node_id: n.status for n in nodes} == {"in": "COMPLETED", "parse": "FAILED"}


async def test_a_duplicated_job_runs_and_charges_once(
    engine: Infra, submit: Submit, wait_terminal: WaitTerminal
) -> None:
    user = _user()
    execution_id = await submit(engine, CHAIN, {"w": "dup"}, user)
    await wait_terminal(engine, execution_id)
    async with engine.sessions() as session:
        template = await session.scalar(
            select(NodeExecution).where(
                NodeExecution.execution_id == uuid.UUID(execution_id), NodeExecution.node_id == "t"
            )
        )
    assert template is not None and template.attempt == 1
    charges_before = await _charges(engine, user)
    job = NodeJob(execution_id=execution_id, node_execution_id=str(template.id))
    for _ in range(3):
        await engine.publisher.publish(
            JOBS_EXCHANGE,
            JOBS_ROUTING_KEY,
            job.model_dump_json().encode(),
            message_id=job.message_id,
        )
    finished = NodeFinished(execution_id=execution_id, node_execution_id=str(template.id))
    async with engine.sessions.begin() as session:
        row = outbox.to_scheduler(engine.topology, execution_id, finished)
        session.add(row)
    await engine.outbox.flush([row])
    await asyncio.sleep(1.0)
    async with engine.sessions() as session:
        again = await session.get(NodeExecution, template.id)
        assert again is not None and again.attempt == 1 and again.status == "COMPLETED"
        count = await session.scalar(
            select(func.count()).where(NodeExecution.execution_id == uuid.UUID(execution_id))
        )
    assert count == 3  # the replayed result created no second run downstream
    assert await _charges(engine, user) == charges_before == 1  # only the template costs


async def test_a_message_left_in_the_outbox_is_sent_by_the_relay(
    engine: Infra, wait_terminal: WaitTerminal
) -> None:
    """A process that dies between commit and publish: the relay publishes the row."""
    async with engine.sessions.begin() as session:
        execution, _row = await repository.create_execution(
            session,
            topology=engine.topology,
            user_id=_user(),
            graph_id="g-test",
            graph_version=1,
            graph=CHAIN,
            inputs={"w": "relay"},
            credentials_inputs={},
        )
    # No flush: only the relay can send `execution.requested`.
    finished = await wait_terminal(engine, str(execution.id))
    assert finished.status == "COMPLETED"
    assert finished.outputs == {"result": ["<relay>"]}
    await engine.outbox.drain()
    for _ in range(50):
        async with engine.sessions() as session:
            left = await session.scalar(select(func.count()).select_from(OutboxMessage))
        if left == 0:
            break
        await asyncio.sleep(0.1)
    assert left == 0


async def test_published_outbox_rows_are_deleted_once_confirmed(engine: Infra) -> None:
    """Rows flushed after their commit are deleted as the broker confirms them, in
    batches of any size, without waiting for the relay."""
    rows = [outbox.to_control(CancelExecution(execution_id=str(uuid.uuid4()))) for _ in range(7)]
    async with engine.sessions.begin() as session:
        session.add_all(rows)
    ids = [row.id for row in rows]
    await engine.outbox.flush(rows[:3])
    await engine.outbox.flush(rows[3:])
    await engine.outbox.drain()
    async with engine.sessions() as session:
        left = await session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.id.in_(ids))
        )
    assert left == 0


async def test_the_relay_holds_no_lock_while_the_broker_confirms(engine: Infra) -> None:
    """Rows due for a re-send are claimed in a statement of their own, then published and
    deleted: while each publish waits for its confirm, the rows are not locked (a relay
    that kept its transaction open for them held back every vacuum of the database)."""
    rows = [outbox.to_control(CancelExecution(execution_id=str(uuid.uuid4()))) for _ in range(5)]
    async with engine.sessions.begin() as session:
        session.add_all(rows)
    ids = [row.id for row in rows]
    published: list[str] = []
    locked_meanwhile: list[bool] = []

    class CheckingPublisher:
        async def publish(self, *args: Any, **kwargs: Any) -> None:
            try:
                async with engine.sessions.begin() as session:
                    await session.execute(
                        text(
                            "SELECT id FROM executor.outbox WHERE id = ANY(:ids) FOR SHARE NOWAIT"
                        ),
                        {"ids": ids},
                    )
                locked_meanwhile.append(False)
            except DBAPIError:
                locked_meanwhile.append(True)
            await engine.publisher.publish(*args, **kwargs)
            published.append(kwargs["message_id"])

    # Due at once for this relay; the fixture's own relay waits for them to be 0.5 s old.
    relay = outbox.Outbox(
        engine.sessions, cast(Publisher, CheckingPublisher()), retry_after_s=0, poll_interval_s=1
    )
    await relay.relay_once()
    assert {row.message_id for row in rows} <= set(published)
    assert locked_meanwhile and not any(locked_meanwhile)
    async with engine.sessions() as session:
        left = await session.scalar(
            select(func.count()).select_from(OutboxMessage).where(OutboxMessage.id.in_(ids))
        )
    assert left == 0


async def test_a_malformed_scheduler_message_is_dead_lettered(engine: Infra) -> None:
    channel = await engine.connection.channel()
    dead = await channel.get_queue(DEAD_QUEUE, ensure=False)
    await dead.purge()
    await engine.publisher.publish(
        SCHEDULER_EXCHANGE,
        engine.topology.partition_key(0),
        b'{"type": "what is this"}',
        message_id="poison-1",
    )
    for _ in range(50):
        message = await dead.get(fail=False)
        if message is not None:
            assert message.message_id == "poison-1"
            await message.ack()
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the poison message was not dead-lettered")
    await channel.close()
