"""Tools of agent blocks: the nodes linked from an agent node's `tools` pin.

Each link from the agent's `tools` pin to a node's input pin makes that pin an argument the
model fills in; the node's other inputs keep their defaults. The runner running the agent
runs a call as a node execution of the same execution (recorded with its inputs and outputs,
charged like any node) and hands the outputs back to the agent; they are not passed along
the tool node's own links (a tool answers the agent). Nodes that cannot answer a call
(graph inputs and outputs, notes, sub-agents, other agents) are not offered as tools.
"""

from __future__ import annotations

import re
from collections import Counter, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from agentloom_blocks.sdk import ERROR_PIN, TOOLS_PIN, Block, BlockKind, Tool, ToolError
from agentloom_executor import pins
from agentloom_executor.graph import GraphSnapshot, NodeSpec

# What providers accept as a function name.
_NAME_CHARS = re.compile(r"[^a-zA-Z0-9_-]")
MAX_NAME_CHARS = 64


@dataclass(frozen=True)
class ToolNode:
    tool: Tool
    node: NodeSpec
    block: type[Block]
    arguments: frozenset[str]

    def inputs(self, arguments: Mapping[str, Any]) -> dict[str, Any]:
        """The node's input for a call: its defaults, overridden by the model's arguments."""
        unknown = sorted(set(arguments) - self.arguments)
        if unknown:
            takes = ", ".join(sorted(self.arguments)) or "no arguments"
            raise ToolError(
                f"tool {self.tool.name!r} has no argument {', '.join(map(repr, unknown))} "
                f"(it takes: {takes})"
            )
        return pins.assemble({**self.node.input_default, **arguments})


def callable_as_tool(block: type[Block]) -> bool:
    return (
        block.kind is BlockKind.STANDARD
        and not getattr(block, "runs_graph", False)
        and not block.uses_tools
    )


def tools_of(
    graph: GraphSnapshot, node_id: str, blocks: Mapping[str, type[Block]]
) -> dict[str, ToolNode]:
    """The tools offered to the agent node `node_id`, by the name the model calls them."""
    arguments: defaultdict[str, list[str]] = defaultdict(list)
    for link in graph.links_from(node_id, TOOLS_PIN):
        arguments[link.sink_id].append(link.sink_name)
    candidates: list[tuple[NodeSpec, type[Block], list[str]]] = []
    for sink_id in sorted(arguments):
        node = graph.nodes.get(sink_id)
        block = blocks.get(node.block_id) if node is not None else None
        if node is not None and block is not None and callable_as_tool(block):
            candidates.append((node, block, sorted(set(arguments[sink_id]))))
    per_block = Counter(block.id for _node, block, _args in candidates)
    found: dict[str, ToolNode] = {}
    for node, block, names in candidates:
        base = block.id.removesuffix("_block")
        name = base if per_block[block.id] == 1 else f"{base}_{node.id}"
        name = _NAME_CHARS.sub("_", name)[:MAX_NAME_CHARS]
        while name in found:
            name = name[: MAX_NAME_CHARS - 1] + "_"
        found[name] = ToolNode(
            Tool(name, _description(block, node), _parameters(block, node, names)),
            node,
            block,
            frozenset(names),
        )
    return found


def _description(block: type[Block], node: NodeSpec) -> str:
    return f"{block.name} (node {node.id}): {block.description}"


def _parameters(block: type[Block], node: NodeSpec, names: list[str]) -> dict[str, Any]:
    """JSON Schema of the arguments: the linked pins' schemas from the block's input schema."""
    schema = block.input_schema()
    properties = schema.get("properties", {})
    required_pins = block.required_inputs()
    parameters: dict[str, Any] = {
        "type": "object",
        "properties": {name: properties.get(pins.base_of(name), {}) for name in names},
        "required": [
            name
            for name in names
            if pins.base_of(name) in required_pins and node.input_default.get(name) is None
        ],
        "additionalProperties": False,
    }
    if "$defs" in schema:
        parameters["$defs"] = schema["$defs"]
    return parameters


def answer(outputs: list[list[Any]]) -> dict[str, Any]:
    """A tool node's outputs for the model: {pin: value}, a list where a pin yielded more
    than once."""
    grouped: defaultdict[str, list[Any]] = defaultdict(list)
    for pin, value in outputs:
        if pin != ERROR_PIN:
            grouped[pin].append(value)
    return {pin: values[0] if len(values) == 1 else values for pin, values in grouped.items()}
