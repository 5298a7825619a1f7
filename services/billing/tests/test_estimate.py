"""Graph estimates: per node, totals, critical path, cycles."""

from __future__ import annotations

import pytest

from agentloom_billing.costs import CostTable
from agentloom_billing.estimate import NodeSpec, estimate_graph
from agentloom_common.errors import InvalidArgument

TABLE = CostTable.model_validate(
    {
        "default": {"per_run": 1},
        "blocks": {
            "slow": {"per_run": 5, "estimate": {"seconds": 10}},
            "fast": {"per_run": 2, "estimate": {"seconds": 1}},
        },
    }
)


def node(node_id: str, block_id: str) -> NodeSpec:
    return NodeSpec(id=node_id, block_id=block_id, input_default={})


def test_totals_sum_the_nodes_and_the_critical_path_follows_links() -> None:
    nodes = [node("a", "fast"), node("b", "slow"), node("c", "fast"), node("d", "other")]
    # a -> b -> d and a -> c -> d: the path through b is the longest.
    links = [("a", "b"), ("a", "c"), ("b", "d"), ("c", "d")]
    estimate = estimate_graph(TABLE, nodes, links)
    assert [(n.node_id, n.credits) for n in estimate.nodes] == [
        ("a", 2),
        ("b", 5),
        ("c", 2),
        ("d", 1),
    ]
    assert estimate.total_credits == 10
    assert estimate.total_seconds == 12
    assert estimate.critical_path_seconds == 11
    assert estimate.has_cycles is False


def test_unlinked_nodes_run_in_parallel() -> None:
    estimate = estimate_graph(TABLE, [node("a", "slow"), node("b", "slow")], [])
    assert (estimate.total_seconds, estimate.critical_path_seconds) == (20, 10)


def test_a_loop_is_flagged_and_counted_once() -> None:
    nodes = [node("a", "fast"), node("b", "slow"), node("c", "fast")]
    links = [("a", "b"), ("b", "c"), ("c", "b")]
    estimate = estimate_graph(TABLE, nodes, links)
    assert estimate.has_cycles is True
    assert estimate.total_credits == 9
    assert estimate.critical_path_seconds == 12


def test_empty_graph_costs_nothing() -> None:
    estimate = estimate_graph(TABLE, [], [])
    assert (estimate.total_credits, estimate.critical_path_seconds) == (0, 0)


@pytest.mark.parametrize("raw", ["[1]", "{", '"text"'])
def test_node_input_that_is_not_a_json_object_is_refused(raw: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        NodeSpec.parse(id="n1", block_id="b", input_default_json=raw)
    assert raised.value.metadata["node_id"] == "n1"


def test_input_size_counts_with_a_byte_rate() -> None:
    table = CostTable.model_validate({"default": {"per_kb_input": 1024}})
    spec = NodeSpec.parse(id="n", block_id="b", input_default_json='{"k": "vv"}')
    assert estimate_graph(table, [spec], []).total_credits == len('{"k": "vv"}')
