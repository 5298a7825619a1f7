"""The graph an execution runs, as snapshotted at creation, and the pure rules on it:
which nodes start, what a graph's inputs must be, when a waiting node is ready."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from agentloom_blocks.sdk import Block, BlockKind


@dataclass(frozen=True)
class LinkSpec:
    source_id: str
    source_name: str
    sink_id: str
    sink_name: str
    is_static: bool = False


@dataclass(frozen=True)
class NodeSpec:
    id: str
    block_id: str
    input_default: dict[str, Any]


@dataclass
class GraphSnapshot:
    nodes: dict[str, NodeSpec]
    links: list[LinkSpec]
    _links_from: dict[tuple[str, str], list[LinkSpec]] = field(default_factory=dict, repr=False)
    _linked_pins: dict[str, set[str]] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        links_from: dict[tuple[str, str], list[LinkSpec]] = defaultdict(list)
        linked_pins: dict[str, set[str]] = defaultdict(set)
        for link in self.links:
            links_from[(link.source_id, link.source_name)].append(link)
            linked_pins[link.sink_id].add(link.sink_name)
        self._links_from = dict(links_from)
        self._linked_pins = dict(linked_pins)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GraphSnapshot:
        nodes = {
            n["id"]: NodeSpec(n["id"], n["block_id"], dict(n.get("input_default") or {}))
            for n in data.get("nodes", [])
        }
        links = [
            LinkSpec(
                link["source_id"],
                link["source_name"],
                link["sink_id"],
                link["sink_name"],
                link.get("is_static", False),
            )
            for link in data.get("links", [])
        ]
        return cls(nodes, links)

    def links_from(self, node_id: str, pin: str) -> list[LinkSpec]:
        return self._links_from.get((node_id, pin), [])

    def linked_pins(self, node_id: str) -> set[str]:
        """The input pins of a node that some link feeds: all must hold a value to run it."""
        return self._linked_pins.get(node_id, set())


def graph_input_nodes(
    graph: GraphSnapshot, blocks: Mapping[str, type[Block]]
) -> dict[str, tuple[NodeSpec, type[Block]]]:
    """Input-block nodes by the graph input name they read."""
    found: dict[str, tuple[NodeSpec, type[Block]]] = {}
    for node in graph.nodes.values():
        block = blocks.get(node.block_id)
        if block is not None and block.kind is BlockKind.INPUT:
            name = block.graph_io_name(node.input_default)
            if name is not None:
                found[name] = (node, block)
    return found


def input_problems(
    graph: GraphSnapshot, blocks: Mapping[str, type[Block]], inputs: Mapping[str, Any]
) -> dict[str, str]:
    """{input name: problem} for unknown inputs and required inputs left without a value."""
    known = graph_input_nodes(graph, blocks)
    problems = {name: "the graph has no input of this name" for name in inputs if name not in known}
    for name, (node, _block) in known.items():
        if name not in inputs and node.input_default.get("value") is None:
            problems[name] = "required input is missing"
    return problems


def starting_nodes(
    graph: GraphSnapshot, blocks: Mapping[str, type[Block]], inputs: Mapping[str, Any]
) -> list[tuple[NodeSpec, dict[str, Any]]]:
    """Nodes that run first, with their inputs: input blocks (fed the execution's inputs)
    and every other node that no link feeds. Notes never run."""
    starting: list[tuple[NodeSpec, dict[str, Any]]] = []
    for node in graph.nodes.values():
        block = blocks.get(node.block_id)
        if block is None or block.kind is BlockKind.NOTE:
            continue
        if block.kind is BlockKind.INPUT:
            name = block.graph_io_name(node.input_default)
            node_inputs = dict(node.input_default)
            if name is not None and name in inputs:
                node_inputs["value"] = inputs[name]
            starting.append((node, node_inputs))
        elif not graph.linked_pins(node.id):
            starting.append((node, dict(node.input_default)))
    return starting


def ready_inputs(
    graph: GraphSnapshot, node_id: str, received: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The node's full input once every linked pin has a value (links override defaults)."""
    if not graph.linked_pins(node_id) <= received.keys():
        return None
    return {**graph.nodes[node_id].input_default, **received}
