"""Rows to protobuf messages."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

from google.protobuf.timestamp_pb2 import Timestamp

from agentloom.executor.v1 import executor_pb2
from agentloom_executor.repository import ExecutionRow
from agentloom_executor.tables import Execution, NodeExecution


def _ts(value: datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def status_proto(status: str) -> executor_pb2.ExecutionStatus.ValueType:
    return executor_pb2.ExecutionStatus.Value(f"EXECUTION_STATUS_{status}")


def execution_proto(row: Execution | ExecutionRow) -> executor_pb2.Execution:
    duration_ms = 0
    if row.started_at is not None and row.ended_at is not None:
        duration_ms = int((row.ended_at - row.started_at).total_seconds() * 1000)
    return executor_pb2.Execution(
        id=str(row.id),
        user_id=row.user_id,
        graph_id=row.graph_id,
        graph_version=row.graph_version,
        status=status_proto(row.status),
        inputs_json=json.dumps(row.inputs),
        outputs_json=json.dumps(row.outputs),
        error=row.error or "",
        created_at=_ts(row.created_at),
        started_at=_ts(row.started_at),
        ended_at=_ts(row.ended_at),
        stats=executor_pb2.ExecutionStats(
            node_count=row.node_count, duration_ms=duration_ms, cost=row.cost
        ),
        max_credits=row.max_credits,
    )


def node_execution_proto(row: NodeExecution) -> executor_pb2.NodeExecution:
    return executor_pb2.NodeExecution(
        id=str(row.id),
        execution_id=str(row.execution_id),
        node_id=row.node_id,
        block_id=row.block_id,
        status=status_proto(row.status),
        inputs_json=json.dumps(row.inputs),
        outputs_json=json.dumps(row.outputs or []),
        error=row.error or "",
        created_at=_ts(row.created_at),
        started_at=_ts(row.started_at),
        ended_at=_ts(row.ended_at),
        attempt=row.attempt,
        cost=row.cost,
    )


def event_proto(document: dict[str, Any]) -> executor_pb2.ExecutionEvent:
    stamp = Timestamp()
    stamp.FromDatetime(datetime.fromisoformat(document["created_at"]))
    return executor_pb2.ExecutionEvent(
        event_id=document["event_id"],
        type=document["type"],
        seq=document["seq"],
        user_id=document["user_id"],
        graph_id=document["graph_id"],
        graph_version=document["graph_version"],
        graph_exec_id=document["graph_exec_id"],
        created_at=stamp,
        data_json=json.dumps(document["data"], separators=(",", ":")),
    )
