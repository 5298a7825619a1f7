"""The graph's input and output schemas, derived from its input and output blocks."""

from __future__ import annotations

import json
from typing import Any

from agentloom.blocks.v1 import blocks_pb2
from agentloom_graphs.block_specs import BlockSpec, Catalog
from agentloom_graphs.domain import Node
from agentloom_graphs.io_schema import input_schema, output_schema


def node(node_id: str, block_id: str, **input_default: Any) -> Node:
    return Node(node_id, block_id, input_default, {})


def test_input_schema_has_one_property_per_input_block_in_graph_order(catalog: Catalog) -> None:
    nodes = [
        node("t", "text_input_block", name="topic", title="Topic", description="What about"),
        node("pass", "pass_through_block", value=1),
        node("n", "number_input_block", name="count", value=3),
        node("plain", "text_input_block"),
    ]

    schema = input_schema(nodes, catalog)

    assert schema == {
        "type": "object",
        "properties": {
            "topic": {"type": "string", "title": "Topic", "description": "What about"},
            "count": {
                "anyOf": [{"type": "integer"}, {"type": "number"}],
                "title": "count",
                "default": 3,
            },
            "text": {"type": "string", "title": "text"},
        },
        "required": ["topic", "text"],
    }
    assert list(schema["properties"]) == ["topic", "count", "text"]


def test_output_schema_has_one_property_per_output_name(catalog: Catalog) -> None:
    nodes = [
        node("o1", "output_block", name="summary", description="The gist"),
        node("o2", "output_block", name="summary", title="ignored: first one wins"),
        node("o3", "output_block", name="score", title="Score"),
        node("i", "text_input_block"),
    ]

    assert output_schema(nodes, catalog) == {
        "type": "object",
        "properties": {
            "summary": {"title": "summary", "description": "The gist"},
            "score": {"title": "Score"},
        },
    }


def test_a_value_type_pointing_into_the_blocks_own_defs_is_left_untyped() -> None:
    block = BlockSpec.from_proto(
        blocks_pb2.Block(
            id="ref_input",
            kind=blocks_pb2.BLOCK_KIND_INPUT,
            input_schema_json=json.dumps(
                {"properties": {"name": {"default": "thing"}, "value": {"$ref": "#/$defs/T"}}}
            ),
        )
    )

    schema = input_schema([node("r", "ref_input", secret=True)], {"ref_input": block})

    assert schema["properties"] == {"thing": {"title": "thing", "secret": True}}
