"""The graph an execution runs, as snapshotted at creation, and the pure rules on it:
which nodes start, what a graph's inputs must be, when a waiting node is ready."""

from __future__ import annotations

import json
from collections import OrderedDict, defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import inspect, select
from sqlalchemy.ext.asyncio import AsyncSession

from agentloom.graphs.v1 import graphs_pb2
from agentloom_blocks.sdk import Block, BlockKind
from agentloom_executor import pins
from agentloom_executor.tables import Execution


@dataclass(frozen=True)
class LinkSpec:
    source_id: str
    source_name: str
    sink_id: str
    sink_name: str
    is_static: bool = False

    @property
    def source_pin(self) -> str:
        return pins.base_of(self.source_name)

    @property
    def source_steps(self) -> list[pins.Step]:
        return pins.parse(self.source_name)[1]


@dataclass(frozen=True)
class NodeSpec:
    id: str
    block_id: str
    input_default: dict[str, Any]
    # Engine settings of this node: {"retry": {...}, "timeout_s": ...}.
    config: dict[str, Any] = field(default_factory=dict)


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
            links_from[(link.source_id, link.source_pin)].append(link)
            linked_pins[link.sink_id].add(link.sink_name)
        self._links_from = dict(links_from)
        self._linked_pins = dict(linked_pins)

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> GraphSnapshot:
        nodes = {
            n["id"]: NodeSpec(
                n["id"],
                n["block_id"],
                dict(n.get("input_default") or {}),
                dict(n.get("config") or {}),
            )
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
        """Links leaving an output pin (their source path may select inside the value)."""
        return self._links_from.get((node_id, pin), [])

    def linked_pins(self, node_id: str) -> set[str]:
        """The input pins of a node that some link feeds: all must hold a value to run it."""
        return self._linked_pins.get(node_id, set())

    def may_wait(self, node_id: str) -> bool:
        """Whether a run of this node can wait for values (INCOMPLETE): only when links feed
        it on more than one pin; with one, the first value makes it ready."""
        return len(self.linked_pins(node_id)) > 1


def node_config(metadata: Mapping[str, Any]) -> dict[str, Any]:
    """The engine settings a node's metadata may carry (the rest is the builder's)."""
    return {key: metadata[key] for key in ("retry", "timeout_s") if key in metadata}


def graph_json(graph: graphs_pb2.Graph) -> dict[str, Any]:
    """The snapshot an execution keeps of the graph version it runs."""
    return {
        "nodes": [
            {
                "id": n.id,
                "block_id": n.block_id,
                "input_default": json.loads(n.input_default_json or "{}"),
            }
            for n in graph.nodes
        ],
        "links": [
            {
                "source_id": link.source_id,
                "source_name": link.source_name,
                "sink_id": link.sink_id,
                "sink_name": link.sink_name,
                "is_static": link.is_static,
            }
            for link in graph.links
        ],
    }


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
            starting.append((node, pins.assemble(node.input_default)))
    return starting


def ready_inputs(
    graph: GraphSnapshot, node_id: str, received: Mapping[str, Any]
) -> dict[str, Any] | None:
    """The node's full input once every linked pin has a value: links override defaults,
    and path pins (`values_#_k`) are assembled into their base pin."""
    if not graph.linked_pins(node_id) <= received.keys():
        return None
    return pins.assemble({**graph.nodes[node_id].input_default, **received})


class GraphCache:
    """Parsed graph snapshots of running executions, by execution id; only a cache (a
    snapshot never changes, and is read again from the execution row when evicted)."""

    def __init__(self, size: int = 1000) -> None:
        self._size = size
        self._graphs: OrderedDict[str, GraphSnapshot] = OrderedDict()

    def __contains__(self, execution_id: object) -> bool:
        return str(execution_id) in self._graphs

    async def get(self, session: AsyncSession, execution: Execution) -> GraphSnapshot:
        """The execution's graph. The column is not loaded with the row (it is the row's
        largest value and rarely needed): on a miss, it is taken from the row if the caller
        loaded it with the row (`lock_execution(with_graph=True)`), else read."""
        key = str(execution.id)
        graph = self._graphs.get(key)
        if graph is None:
            if "graph" in inspect(execution).unloaded:
                query = select(Execution.graph).where(Execution.id == execution.id)
                data = await session.scalar(query)
            else:
                data = execution.graph
            graph = GraphSnapshot.from_json(data or {})
            self._graphs[key] = graph
            while len(self._graphs) > self._size:
                self._graphs.popitem(last=False)
        else:
            self._graphs.move_to_end(key)
        return graph

    def forget(self, execution_id: str) -> None:
        self._graphs.pop(execution_id, None)
