"""Cost estimate of a graph before it runs, from the cost table and the graph's shape.

As the reference manual's section 6.1.2 sketches: each node's credits and time from its
block and static inputs, their totals, and the critical path (the longest chain of linked
nodes, which bounds the run time when independent nodes run in parallel). A loop runs its
nodes an unknown number of times, so with cycles the figures are a lower bound.
"""

from __future__ import annotations

import json
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from agentloom_billing.costs import CostTable
from agentloom_common.errors import InvalidArgument

MAX_NODES = 10_000
MAX_LINKS = 40_000


@dataclass(frozen=True)
class NodeSpec:
    id: str
    block_id: str
    input_default: dict[str, Any]

    @classmethod
    def parse(cls, *, id: str, block_id: str, input_default_json: str) -> NodeSpec:
        """A node as the graphs service stores it; bad JSON is the caller's error."""
        try:
            inputs = json.loads(input_default_json) if input_default_json else {}
        except ValueError:
            inputs = None
        if not isinstance(inputs, dict):
            raise InvalidArgument(
                f"node {id!r}: input_default_json is not a JSON object",
                metadata={"field": "nodes.input_default_json", "node_id": id},
            )
        return cls(id=id, block_id=block_id, input_default=inputs)


@dataclass(frozen=True)
class NodeEstimate:
    node_id: str
    block_id: str
    credits: int
    seconds: float


@dataclass(frozen=True)
class GraphEstimate:
    nodes: tuple[NodeEstimate, ...]
    total_credits: int
    total_seconds: float
    critical_path_seconds: float
    has_cycles: bool


def estimate_graph(
    table: CostTable, nodes: Sequence[NodeSpec], links: Sequence[tuple[str, str]]
) -> GraphEstimate:
    """Each node once, priced by the table; links between unknown nodes are ignored."""
    if len(nodes) > MAX_NODES or len(links) > MAX_LINKS:
        raise InvalidArgument("the graph is too large to estimate", metadata={"field": "nodes"})
    estimates = []
    for node in nodes:
        cost = table.estimate(node.block_id, node.input_default)
        estimates.append(NodeEstimate(node.id, node.block_id, cost.credits, cost.seconds))
    seconds = {e.node_id: e.seconds for e in estimates}
    critical, has_cycles = _critical_path(seconds, links)
    return GraphEstimate(
        nodes=tuple(estimates),
        total_credits=sum(e.credits for e in estimates),
        total_seconds=sum(e.seconds for e in estimates),
        critical_path_seconds=critical,
        has_cycles=has_cycles,
    )


def _critical_path(
    seconds: dict[str, float], links: Sequence[tuple[str, str]]
) -> tuple[float, bool]:
    """Longest path by node time over the links (Kahn's order); nodes left over sit on or
    behind a cycle, and count once after the longest path that reaches them."""
    successors: dict[str, set[str]] = defaultdict(set)
    indegree = dict.fromkeys(seconds, 0)
    for source, sink in links:
        if source in seconds and sink in seconds and sink not in successors[source]:
            successors[source].add(sink)
            indegree[sink] += 1
    finish = dict.fromkeys(seconds, 0.0)
    ready = [node for node, degree in indegree.items() if degree == 0]
    for node in ready:
        finish[node] += seconds[node]
    while ready:
        node = ready.pop()
        for sink in successors[node]:
            finish[sink] = max(finish[sink], finish[node])
            indegree[sink] -= 1
            if indegree[sink] == 0:
                finish[sink] += seconds[sink]
                ready.append(sink)
    stuck = [node for node, degree in indegree.items() if degree > 0]
    longest = max(finish.values(), default=0.0)
    if stuck:
        longest = max(longest, max(finish[n] for n in stuck) + sum(seconds[n] for n in stuck))
    return longest, bool(stuck)
