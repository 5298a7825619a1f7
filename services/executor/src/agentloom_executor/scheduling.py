"""The data-flow engine, applied to one execution inside one transaction.

The scheduler calls these with the execution row locked, so results of one execution are
applied one at a time, and applying the same result twice is a no-op (`applied` flag).
Semantics (see shared/reference/autogpt-semantics.md): each yielded (pin, value) travels
along every link from that pin; a waiting node execution collects one value per linked pin
and runs once every linked pin has one (links override defaults); a value arriving on a pin
already filled goes to the next waiting node execution, or a new one, so N values on a pin
give N runs of the sink.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from agentloom_blocks.sdk import ERROR_PIN, Block, BlockKind
from agentloom_common.bus import Topology
from agentloom_executor import outbox, repository
from agentloom_executor.graph import GraphSnapshot, ready_inputs, starting_nodes
from agentloom_executor.messages import NodeJob
from agentloom_executor.status import Status
from agentloom_executor.tables import Execution, NodeExecution, OutboxMessage

OUTPUT_PIN = "output"


def _new_node_execution(
    execution: Execution, node_id: str, block_id: str, status: Status, inputs: dict[str, Any]
) -> NodeExecution:
    return NodeExecution(
        id=uuid.uuid4(),
        execution_id=execution.id,
        node_id=node_id,
        block_id=block_id,
        status=status.value,
        inputs=inputs,
        attempt=0,
        cost=0,
        applied=False,
        created_at=repository.now(),
    )


def _job(execution: Execution, node_execution: NodeExecution) -> OutboxMessage:
    return outbox.to_runners(
        NodeJob(execution_id=str(execution.id), node_execution_id=str(node_execution.id))
    )


async def start_execution(
    session: AsyncSession,
    execution: Execution,
    graph: GraphSnapshot,
    blocks: Mapping[str, type[Block]],
) -> list[OutboxMessage]:
    """QUEUED -> RUNNING, and queue the starting nodes. An execution already started (a
    redelivered request) or cancelled before it started is left alone."""
    if execution.status != Status.QUEUED.value:
        return []
    execution.status = Status.RUNNING.value
    execution.started_at = repository.now()
    rows: list[OutboxMessage] = []
    for node, inputs in starting_nodes(graph, blocks, execution.inputs):
        node_execution = _new_node_execution(
            execution, node.id, node.block_id, Status.QUEUED, inputs
        )
        session.add(node_execution)
        rows.append(_job(execution, node_execution))
    if not rows:
        return await repository.end_execution(session, execution, Status.COMPLETED)
    session.add_all(rows)
    await session.flush()
    return rows


async def apply_finished(
    session: AsyncSession,
    execution: Execution,
    node_execution: NodeExecution,
    graph: GraphSnapshot,
    blocks: Mapping[str, type[Block]],
    topology: Topology,
) -> list[OutboxMessage]:
    """Pass a finished node execution's outputs along its links; end the execution when
    nothing is left to run, or when the node failed and nothing handles its error pin."""
    if execution.status != Status.RUNNING.value or node_execution.applied:
        return []
    if node_execution.status not in (Status.COMPLETED.value, Status.FAILED.value):
        return []
    node_execution.applied = True
    node = graph.nodes.get(node_execution.node_id)
    block = blocks.get(node_execution.block_id)
    waiting = await _waiting_by_node(session, execution.id)
    rows: list[OutboxMessage] = []
    outputs: list[list[Any]] = node_execution.outputs or []
    for pin, value in outputs:
        if block is not None and node is not None and block.kind is BlockKind.OUTPUT:
            if pin == OUTPUT_PIN:
                _record_graph_output(execution, block, node.input_default, value)
        for link in graph.links_from(node_execution.node_id, pin):
            sink = graph.nodes[link.sink_id]
            target = _waiting_without(waiting[sink.id], link.sink_name)
            if target is None:
                target = _new_node_execution(
                    execution, sink.id, sink.block_id, Status.INCOMPLETE, {}
                )
                session.add(target)
                waiting[sink.id].append(target)
            target.inputs = {**target.inputs, link.sink_name: value}
            merged = ready_inputs(graph, sink.id, target.inputs)
            if merged is not None:
                target.inputs = merged
                target.status = Status.QUEUED.value
                waiting[sink.id].remove(target)
                rows.append(_job(execution, target))
    session.add_all(rows)
    await session.flush()
    unhandled = node_execution.status == Status.FAILED.value and not graph.links_from(
        node_execution.node_id, ERROR_PIN
    )
    if unhandled:
        error = f"node {node_execution.node_id!r} failed: {node_execution.error}"
        rows += await repository.end_execution(session, execution, Status.FAILED, error=error)
    elif await repository.count_active_nodes(session, execution.id) == 0:
        rows += await repository.end_execution(session, execution, Status.COMPLETED)
    return rows


def _record_graph_output(
    execution: Execution, block: type[Block], input_default: Mapping[str, Any], value: Any
) -> None:
    name = block.graph_io_name(input_default) or "output"
    outputs = dict(execution.outputs)
    outputs[name] = [*outputs.get(name, []), value]
    execution.outputs = outputs


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


def _waiting_without(candidates: list[NodeExecution], pin: str) -> NodeExecution | None:
    for candidate in candidates:
        if pin not in candidate.inputs:
            return candidate
    return None
