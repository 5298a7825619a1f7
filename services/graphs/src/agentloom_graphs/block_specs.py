"""What graph validation needs to know of a block, read once from its catalog entry."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agentloom.blocks.v1 import blocks_pb2

ERROR_PIN = "error"

INPUT_KIND = blocks_pb2.BLOCK_KIND_INPUT
OUTPUT_KIND = blocks_pb2.BLOCK_KIND_OUTPUT
STANDARD_KIND = blocks_pb2.BLOCK_KIND_STANDARD
# The output pin of an agent block linking to the nodes it calls as tools (marked `x-tools`).
TOOLS_PIN = "tools"


@dataclass(frozen=True)
class BlockSpec:
    """A block's pins and kind, as the blocks service publishes them."""

    id: str
    name: str
    kind: blocks_pb2.BlockKind.ValueType
    input_properties: Mapping[str, Mapping[str, Any]]
    required_inputs: frozenset[str]
    output_pins: frozenset[str]
    accepts_extra_inputs: bool
    # A block whose outputs depend on its input (a sub-agent yields its graph's outputs):
    # its output schema allows additional properties, and any output pin may be linked.
    accepts_extra_outputs: bool = False
    # An agent block: the nodes linked from its `tools` pin are its tools, not its sinks.
    uses_tools: bool = False

    @property
    def callable_as_tool(self) -> bool:
        """Only plain blocks answer a tool call (not graph I/O, notes, sub-agents, agents)."""
        return self.kind == STANDARD_KIND and not self.accepts_extra_outputs and not self.uses_tools

    @property
    def input_pins(self) -> frozenset[str]:
        return frozenset(self.input_properties)

    @classmethod
    def from_proto(cls, block: blocks_pb2.Block) -> BlockSpec:
        """Raises ValueError when the block's schemas are not JSON Schema objects."""
        input_schema = _schema(block.input_schema_json)
        output_schema = _schema(block.output_schema_json)
        input_properties = _properties(input_schema)
        required = input_schema.get("required", [])
        if not isinstance(required, list) or not all(isinstance(r, str) for r in required):
            raise ValueError(f"block {block.id!r}: input schema `required` is not a string list")
        return cls(
            id=block.id,
            name=block.name or block.id,
            kind=block.kind,
            input_properties=input_properties,
            required_inputs=frozenset(required),
            # Every block has an `error` output pin, whether its schema says so or not.
            output_pins=frozenset(_properties(output_schema)) | {ERROR_PIN},
            accepts_extra_inputs=block.accepts_extra_inputs,
            accepts_extra_outputs=output_schema.get("additionalProperties") is True,
            uses_tools=_properties(output_schema).get(TOOLS_PIN, {}).get("x-tools") is True,
        )

    def io_name(self, input_default: Mapping[str, Any]) -> Any:
        """For input and output blocks: the graph input/output name (None when unset)."""
        if "name" in input_default:
            return input_default["name"]
        return self.input_properties.get("name", {}).get("default")


Catalog = Mapping[str, BlockSpec]


def _schema(text: str) -> dict[str, Any]:
    schema = json.loads(text) if text.strip() else {}
    if not isinstance(schema, dict):
        raise ValueError("a block schema must be a JSON object")
    return schema


def _properties(schema: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    properties = schema.get("properties", {})
    if not isinstance(properties, dict):
        raise ValueError("a block schema's `properties` must be an object")
    return {name: p if isinstance(p, dict) else {} for name, p in properties.items()}
