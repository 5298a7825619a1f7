"""Invalid-graph errors stay readable and small enough for gRPC trailers."""

from __future__ import annotations

import json

from agentloom_graphs.errors import NODE_ERRORS_BUDGET_BYTES, GraphInvalid, version_conflict


def test_node_errors_are_cut_to_fit_the_trailer_budget_and_say_so() -> None:
    node_errors = {f"node-{i}": {"block_id": "unknown block " + "x" * 500} for i in range(300)}

    error = GraphInvalid(node_errors)

    sent = json.loads(error.metadata["node_errors"])
    assert len(error.metadata["node_errors"]) <= NODE_ERRORS_BUDGET_BYTES
    assert sent["node-0"]["block_id"].endswith("...")
    left_out = 300 - (len(sent) - 1)
    assert sent[""]["truncated"] == f"{left_out} more problems not shown"
    assert error.node_errors == node_errors  # the full set stays available in-process


def test_summary_names_the_first_problems() -> None:
    error = GraphInvalid({"": {"name": "a graph needs a name"}, "n1": {"x": "bad"}})

    assert error.message == (
        "graph is invalid (2 problems): graph: name: a graph needs a name; node 'n1': x: bad"
    )


def test_version_conflict_tells_the_latest_version() -> None:
    error = version_conflict(2, 5)

    assert error.reason == "GRAPH_VERSION_CONFLICT"
    assert error.metadata == {"expected_version": "2", "latest_version": "5"}
