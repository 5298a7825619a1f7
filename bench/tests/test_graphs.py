from __future__ import annotations

import copy
from typing import Any

from bench import graphs


def _completed(outputs: dict[str, list[Any]], node_count: int) -> dict[str, Any]:
    return {"status": "COMPLETED", "outputs": outputs, "stats": {"node_count": node_count}}


def test_chain_is_linear_from_input_to_output() -> None:
    spec = graphs.chain_graph(10)
    ids = [node["id"] for node in spec["nodes"]]
    assert len(ids) == 10 and len(set(ids)) == 10
    assert spec["nodes"][0]["block_id"] == "text_input_block"
    assert spec["nodes"][-1]["block_id"] == "output_block"
    assert {node["block_id"] for node in spec["nodes"][1:-1]} == {"pass_through_block"}
    pairs = [(link["source_id"], link["sink_id"]) for link in spec["links"]]
    assert pairs == [(ids[i], ids[i + 1]) for i in range(9)]
    assert spec["links"][0]["source_name"] == "text"


def test_echo_is_input_straight_to_output() -> None:
    spec = graphs.echo_graph()
    assert [node["id"] for node in spec["nodes"]] == ["in", "out"]
    assert spec["links"] == [
        {"source_id": "in", "source_name": "text", "sink_id": "out", "sink_name": "value"}
    ]


def test_fan_out_counts_every_node_execution() -> None:
    spec = graphs.fanout_graph(100)
    assert spec["nodes"][0]["input_default"]["items"] == list(range(100))
    assert graphs.fanout_expected(100).node_executions == 201
    assert graphs.iteration_expected(10_000).node_executions == 10_001


def test_check_accepts_a_correct_execution() -> None:
    assert (
        graphs.check_execution(_completed({"result": ["x"]}, 10), graphs.chain_expected("x"))
        is None
    )
    fan = _completed({"items": [2, 0, 1]}, 7)
    assert graphs.check_execution(fan, graphs.fanout_expected(3)) is None


def test_check_rejects_wrong_status_outputs_and_counts() -> None:
    expected = graphs.chain_expected("x")
    good = _completed({"result": ["x"]}, 10)
    failed = good | {"status": "FAILED", "error": "boom"}
    assert "FAILED" in (graphs.check_execution(failed, expected) or "")
    assert graphs.check_execution(_completed({"result": ["y"]}, 10), expected) is not None
    assert graphs.check_execution(_completed({"other": ["x"]}, 10), expected) is not None
    assert graphs.check_execution(_completed({"result": ["x"]}, 9), expected) is not None
    # A fan-out missing one value, or with one twice, is wrong in any order.
    fan = graphs.fanout_expected(3)
    assert graphs.check_execution(_completed({"items": [0, 1, 1]}, 7), fan) is not None


def test_check_results_wants_every_node_execution_completed() -> None:
    expected = graphs.chain_expected("x", 2)
    nodes = [{"node_id": "in", "status": "COMPLETED"}, {"node_id": "out", "status": "COMPLETED"}]
    results = {"execution": _completed({"result": ["x"]}, 2), "node_executions": nodes}
    assert graphs.check_results(results, expected) is None
    broken = copy.deepcopy(results)
    broken["node_executions"][1]["status"] = "FAILED"
    assert "out" in (graphs.check_results(broken, expected) or "")
    short = copy.deepcopy(results)
    short["node_executions"].pop()
    assert graphs.check_results(short, expected) is not None
