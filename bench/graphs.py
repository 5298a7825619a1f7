"""The graphs the workloads run, built only from trivial blocks so that what is measured is
the platform's own overhead, and what a correct run of each must give back."""

from __future__ import annotations

import itertools
import json
from dataclasses import dataclass
from typing import Any

TERMINAL = frozenset({"COMPLETED", "FAILED", "CANCELLED"})


def _node(node_id: str, block_id: str, **input_default: Any) -> dict[str, Any]:
    return {"id": node_id, "block_id": block_id, "input_default": input_default, "metadata": {}}


def _link(source: str, source_name: str, sink: str, sink_name: str) -> dict[str, str]:
    return {
        "source_id": source,
        "source_name": source_name,
        "sink_id": sink,
        "sink_name": sink_name,
    }


def chain_graph(nodes: int = 10) -> dict[str, Any]:
    """A linear graph of `nodes` nodes: text input (`text`) -> pass-throughs -> output `result`."""
    ids = ["in", *(f"p{i}" for i in range(1, nodes - 1)), "out"]
    spec = [_node("in", "text_input_block", name="text")]
    spec += [_node(node_id, "pass_through_block") for node_id in ids[1:-1]]
    spec.append(_node("out", "output_block", name="result"))
    links = [
        _link(a, "text" if a == "in" else "value", b, "value") for a, b in itertools.pairwise(ids)
    ]
    return {"name": f"bench chain of {nodes}", "description": "", "nodes": spec, "links": links}


def echo_graph() -> dict[str, Any]:
    """Two nodes: text input (`text`) -> output `result`; the cheapest graph with an input."""
    return chain_graph(2) | {"name": "bench echo"}


def fanout_graph(items: int) -> dict[str, Any]:
    """1 -> items -> items: step through a list of `items` integers, pass each through, and
    gather every value in the graph output `items` (the library has no collecting block yet,
    so the output node, run once per value, is the join)."""
    return {
        "name": f"bench fan-out of {items}",
        "description": "",
        "nodes": [
            _node("each", "step_through_items_block", items=list(range(items))),
            _node("work", "pass_through_block"),
            _node("out", "output_block", name="items"),
        ],
        "links": [_link("each", "item", "work", "value"), _link("work", "value", "out", "value")],
    }


def iteration_graph(items: int) -> dict[str, Any]:
    """Step through a list of `items` integers straight into the graph output `items`."""
    return {
        "name": f"bench iteration over {items}",
        "description": "",
        "nodes": [
            _node("each", "step_through_items_block", items=list(range(items))),
            _node("out", "output_block", name="items"),
        ],
        "links": [_link("each", "item", "out", "value")],
    }


@dataclass(frozen=True)
class Expected:
    """What a correct execution gives back: its graph outputs and how many nodes ran.
    `unordered` compares each output's values as a multiset (fan-outs finish in any order)."""

    outputs: dict[str, list[Any]]
    node_executions: int
    unordered: bool = False


def chain_expected(value: str, nodes: int = 10) -> Expected:
    return Expected(outputs={"result": [value]}, node_executions=nodes)


def fanout_expected(items: int) -> Expected:
    return Expected(
        outputs={"items": list(range(items))}, node_executions=1 + 2 * items, unordered=True
    )


def iteration_expected(items: int) -> Expected:
    return Expected(
        outputs={"items": list(range(items))}, node_executions=1 + items, unordered=True
    )


def _canonical(values: list[Any], unordered: bool) -> list[Any]:
    return (
        sorted(values, key=lambda value: json.dumps(value, sort_keys=True)) if unordered else values
    )


def check_execution(execution: dict[str, Any], expected: Expected) -> str | None:
    """None when the execution COMPLETED with the expected outputs and node count, else why not."""
    status = execution.get("status")
    if status != "COMPLETED":
        return f"status {status} (error: {execution.get('error')})"
    outputs = execution.get("outputs") or {}
    if set(outputs) != set(expected.outputs):
        return f"output names {sorted(outputs)} != {sorted(expected.outputs)}"
    for name, values in expected.outputs.items():
        got = _canonical(list(outputs[name]), expected.unordered)
        if got != _canonical(values, expected.unordered):
            shown = json.dumps(got)[:120]
            return f"output {name!r} has {len(got)} values ({shown}), not the expected"
    count = (execution.get("stats") or {}).get("node_count")
    if count != expected.node_executions:
        return f"{count} node executions ran, not {expected.node_executions}"
    return None


def check_results(results: dict[str, Any], expected: Expected) -> str | None:
    """None when the results page holds the expected node executions, all COMPLETED."""
    problem = check_execution(results.get("execution") or {}, expected)
    if problem is not None:
        return problem
    nodes = results.get("node_executions") or []
    if len(nodes) != expected.node_executions:
        return f"{len(nodes)} node executions listed, not {expected.node_executions}"
    failed = [node["node_id"] for node in nodes if node.get("status") != "COMPLETED"]
    if failed:
        return f"node executions not COMPLETED: {failed[:5]}"
    return None
