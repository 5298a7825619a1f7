"""Protobuf -> JSON translation details clients rely on."""

from __future__ import annotations

import json

from google.protobuf.timestamp_pb2 import Timestamp

from agentloom.blocks.v1 import blocks_pb2
from agentloom.executor.v1 import executor_pb2
from agentloom_gateway import convert, schemas
from agentloom_gateway.routes.graphs import expected_version


def test_node_outputs_are_grouped_by_pin_in_yield_order() -> None:
    pairs = [["text", "a"], ["count", 1], ["text", "b"], ["text", {"c": 3}]]
    node = executor_pb2.NodeExecution(
        id="n1",
        node_id="summarize",
        status=executor_pb2.EXECUTION_STATUS_COMPLETED,
        outputs_json=json.dumps(pairs),
    )
    result = convert.node_execution(node)
    assert result.outputs == {"text": ["a", "b", {"c": 3}], "count": [1]}
    assert list(result.outputs) == ["text", "count"]
    assert result.status == "COMPLETED"
    assert result.error is None and result.started_at is None


def test_execution_status_and_times() -> None:
    created = Timestamp(seconds=1_700_000_000)
    execution = executor_pb2.Execution(
        id="e1",
        graph_id="g1",
        graph_version=2,
        status=executor_pb2.EXECUTION_STATUS_QUEUED,
        inputs_json='{"text": "hi"}',
        created_at=created,
    )
    result = convert.execution(execution)
    assert result.status == schemas.ExecutionStatus.QUEUED
    assert result.inputs == {"text": "hi"} and result.outputs == {}
    assert result.created_at is not None and result.created_at.timestamp() == 1_700_000_000
    assert result.ended_at is None
    assert result.stats == schemas.ExecutionStats(node_count=0, duration_ms=0, cost=0)


def test_unknown_enum_values_do_not_break_answers() -> None:
    assert convert.status(99) == schemas.ExecutionStatus.UNSPECIFIED
    assert convert.block_kind(99) == schemas.BlockKind.UNSPECIFIED


def test_block_shape() -> None:
    block = blocks_pb2.Block(
        id="llm_call_block",
        name="LLM call",
        categories=["ai"],
        kind=blocks_pb2.BLOCK_KIND_STANDARD,
        cost_per_run=3,
        input_schema_json='{"type": "object"}',
    )
    result = convert.block(block).model_dump()
    assert result["kind"] == "STANDARD"
    assert result["cost"] == {"per_run": 3}
    assert result["output_schema"] == {}


def test_if_match_forms() -> None:
    assert expected_version('"3"', None) == 3
    assert expected_version('W/"4"', None) == 4
    assert expected_version("5", 5) == 5
    assert expected_version("*", None) == 0
    assert expected_version(None, 7) == 7
    assert expected_version(None, None) == 0
