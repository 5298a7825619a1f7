"""Translation between protobuf messages and the public JSON shapes, and nothing else."""

from __future__ import annotations

import json
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from agentloom.blocks.v1 import blocks_pb2
from agentloom.executor.v1 import executor_pb2
from agentloom.graphs.v1 import graphs_pb2
from agentloom_gateway import schemas
from agentloom_gateway.apikeys import display_prefix
from agentloom_gateway.tables import ApiKey, User


def _json_object(text: str) -> dict[str, Any]:
    value = json.loads(text) if text else {}
    return value if isinstance(value, dict) else {}


def _time(message: Any, name: str) -> datetime | None:
    if not message.HasField(name):
        return None
    stamp: Timestamp = getattr(message, name)
    return stamp.ToDatetime(tzinfo=UTC)


def graph_spec(graph: schemas.GraphIn) -> graphs_pb2.GraphSpec:
    return graphs_pb2.GraphSpec(
        name=graph.name,
        description=graph.description,
        nodes=[
            graphs_pb2.Node(
                id=node.id,
                block_id=node.block_id,
                input_default_json=json.dumps(node.input_default),
                metadata_json=json.dumps(node.metadata),
            )
            for node in graph.nodes
        ],
        links=[
            graphs_pb2.Link(
                id=link.id or "",
                source_id=link.source_id,
                source_name=link.source_name,
                sink_id=link.sink_id,
                sink_name=link.sink_name,
                is_static=link.is_static,
            )
            for link in graph.links
        ],
    )


def graph(message: graphs_pb2.Graph) -> schemas.Graph:
    return schemas.Graph(
        id=message.id,
        version=message.version,
        is_active=message.is_active,
        name=message.name,
        description=message.description,
        nodes=[
            schemas.Node(
                id=node.id,
                block_id=node.block_id,
                input_default=_json_object(node.input_default_json),
                metadata=_json_object(node.metadata_json),
            )
            for node in message.nodes
        ],
        links=[
            schemas.Link(
                id=link.id,
                source_id=link.source_id,
                source_name=link.source_name,
                sink_id=link.sink_id,
                sink_name=link.sink_name,
                is_static=link.is_static,
            )
            for link in message.links
        ],
        created_at=_time(message, "created_at"),
        input_schema=_json_object(message.input_schema_json),
        output_schema=_json_object(message.output_schema_json),
    )


def status(value: int) -> schemas.ExecutionStatus:
    """`EXECUTION_STATUS_QUEUED` -> `QUEUED`; a status this gateway does not know is UNSPECIFIED."""
    try:
        name = executor_pb2.ExecutionStatus.Name(value)  # type: ignore[arg-type]
        return schemas.ExecutionStatus(name.removeprefix("EXECUTION_STATUS_"))
    except ValueError:
        return schemas.ExecutionStatus.UNSPECIFIED


def _grouped_outputs(text: str) -> dict[str, list[Any]]:
    """A node's `[[pin, value], ...]` as `{pin: [values...]}`, keeping the yield order."""
    grouped: dict[str, list[Any]] = {}
    pairs = json.loads(text) if text else []
    for pin, value in pairs if isinstance(pairs, list) else ():
        grouped.setdefault(str(pin), []).append(value)
    return grouped


def _graph_outputs(text: str) -> dict[str, list[Any]]:
    outputs = _json_object(text)
    return {str(k): v if isinstance(v, list) else [v] for k, v in outputs.items()}


def execution(message: executor_pb2.Execution) -> schemas.Execution:
    return schemas.Execution(
        id=message.id,
        graph_id=message.graph_id,
        graph_version=message.graph_version,
        status=status(message.status),
        inputs=_json_object(message.inputs_json),
        outputs=_graph_outputs(message.outputs_json),
        error=message.error or None,
        created_at=_time(message, "created_at"),
        started_at=_time(message, "started_at"),
        ended_at=_time(message, "ended_at"),
        stats=schemas.ExecutionStats(
            node_count=message.stats.node_count,
            duration_ms=message.stats.duration_ms,
            cost=message.stats.cost,
        ),
        max_credits=message.max_credits if message.HasField("max_credits") else None,
    )


def node_execution(message: executor_pb2.NodeExecution) -> schemas.NodeExecution:
    return schemas.NodeExecution(
        id=message.id,
        node_id=message.node_id,
        block_id=message.block_id,
        status=status(message.status),
        inputs=_json_object(message.inputs_json),
        outputs=_grouped_outputs(message.outputs_json),
        error=message.error or None,
        attempt=message.attempt,
        cost=message.cost,
        created_at=_time(message, "created_at"),
        started_at=_time(message, "started_at"),
        ended_at=_time(message, "ended_at"),
    )


def execution_results(
    message: executor_pb2.Execution, nodes: Iterable[executor_pb2.NodeExecution]
) -> schemas.ExecutionResults:
    result = execution(message)
    return schemas.ExecutionResults(
        execution=result,
        outputs=result.outputs,
        node_executions=[node_execution(node) for node in nodes],
    )


def block_kind(value: int) -> schemas.BlockKind:
    try:
        name = blocks_pb2.BlockKind.Name(value)  # type: ignore[arg-type]
        return schemas.BlockKind(name.removeprefix("BLOCK_KIND_"))
    except ValueError:
        return schemas.BlockKind.UNSPECIFIED


def block(message: blocks_pb2.Block) -> schemas.Block:
    return schemas.Block(
        id=message.id,
        name=message.name,
        description=message.description,
        categories=list(message.categories),
        kind=block_kind(message.kind),
        input_schema=_json_object(message.input_schema_json),
        output_schema=_json_object(message.output_schema_json),
        cost=schemas.BlockCost(per_run=message.cost_per_run),
        accepts_extra_inputs=message.accepts_extra_inputs,
    )


def user(record: User) -> schemas.UserOut:
    return schemas.UserOut(
        id=str(record.id),
        email=record.email,
        name=record.name,
        role=record.role,
        timezone=record.timezone,
    )


def api_key(record: ApiKey) -> schemas.ApiKeyOut:
    return schemas.ApiKeyOut(
        id=str(record.id),
        name=record.name,
        prefix=display_prefix(record.public_id),
        scopes=list(record.scopes),
        created_at=record.created_at,
        last_used_at=record.last_used_at,
        expires_at=record.expires_at,
        revoked_at=record.revoked_at,
        suspended_at=record.suspended_at,
    )
