"""Data-flow semantics through the whole platform: chains, fan-out, fan-in, blocks that
yield several outputs, graph outputs, and the failure policy."""

from __future__ import annotations

from helpers import graph, link, node
from reference_client import AutoGPTClient


async def _run(client: AutoGPTClient, spec: dict, inputs: dict) -> tuple[dict, dict]:
    created = await client.create_graph(spec)
    execution = await client.execute_graph(created["id"], inputs)
    finished = await client.wait(execution["id"])
    results = await client.get_results(execution["id"])
    return finished, results


async def test_chain_passes_each_output_to_the_next_node(client: AutoGPTClient) -> None:
    spec = graph(
        "chain",
        [
            node("in", "text_input_block", name="word"),
            node("upper", "text_template_block", template="{{ w | upper }}"),
            node("wrap", "text_template_block", template="[{{ w }}]"),
            node("out", "output_block", name="result"),
        ],
        [
            link("in", "text", "upper", "w"),
            link("upper", "text", "wrap", "w"),
            link("wrap", "text", "out", "value"),
        ],
    )
    finished, results = await _run(client, spec, {"word": "loom"})
    assert finished["status"] == "COMPLETED"
    assert finished["outputs"] == {"result": ["[LOOM]"]}
    assert results["outputs"] == {"result": ["[LOOM]"]}
    assert [n["node_id"] for n in results["node_executions"]] == ["in", "upper", "wrap", "out"]


async def test_fan_out_and_fan_in(client: AutoGPTClient) -> None:
    spec = graph(
        "fan",
        [
            node("a", "text_input_block", name="a"),
            node("left", "text_template_block", template="L{{ x }}"),
            node("right", "text_template_block", template="R{{ x }}"),
            node("join", "text_template_block", template="{{ l }}+{{ r }}"),
            node("out", "output_block", name="joined"),
        ],
        [
            link("a", "text", "left", "x"),
            link("a", "text", "right", "x"),
            link("left", "text", "join", "l"),
            link("right", "text", "join", "r"),
            link("join", "text", "out", "value"),
        ],
    )
    finished, results = await _run(client, spec, {"a": "1"})
    assert finished["status"] == "COMPLETED"
    assert finished["outputs"] == {"joined": ["L1+R1"]}
    joins = [n for n in results["node_executions"] if n["node_id"] == "join"]
    assert len(joins) == 1 and joins[0]["inputs"]["l"] == "L1" and joins[0]["inputs"]["r"] == "R1"


async def test_each_yielded_value_runs_the_sink_once(client: AutoGPTClient) -> None:
    spec = graph(
        "iterate",
        [
            node("in", "text_input_block", name="csv"),
            node("split", "text_split_block", delimiter=","),
            node("each", "step_through_items_block"),
            node("shout", "text_template_block", template="{{ item }}!"),
            node("out", "output_block", name="shouted"),
        ],
        [
            link("in", "text", "split", "text"),
            link("split", "texts", "each", "items"),
            link("each", "item", "shout", "item"),
            link("shout", "text", "out", "value"),
        ],
    )
    finished, results = await _run(client, spec, {"csv": "a, b, c"})
    assert finished["status"] == "COMPLETED"
    assert sorted(finished["outputs"]["shouted"]) == ["a!", "b!", "c!"]
    each = next(n for n in results["node_executions"] if n["node_id"] == "each")
    assert each["outputs"]["item"] == ["a", "b", "c"]
    assert each["outputs"]["key"] == [0, 1, 2]
    shouts = [n for n in results["node_executions"] if n["node_id"] == "shout"]
    assert len(shouts) == 3 and all(n["status"] == "COMPLETED" for n in shouts)


async def test_unhandled_node_failure_fails_the_execution(client: AutoGPTClient) -> None:
    spec = graph(
        "fails",
        [node("boom", "raise_error_block", message="kaput")],
        [],
    )
    finished, results = await _run(client, spec, {})
    assert finished["status"] == "FAILED"
    assert "boom" in finished["error"] and "kaput" in finished["error"]
    boom = next(n for n in results["node_executions"] if n["node_id"] == "boom")
    assert boom["status"] == "FAILED"
    assert boom["outputs"]["error"] == ["kaput"]


async def test_wired_error_pin_handles_the_failure(client: AutoGPTClient) -> None:
    spec = graph(
        "handled",
        [
            node("boom", "raise_error_block", message="kaput"),
            node("handler", "text_template_block", template="handled: {{ e }}"),
            node("out", "output_block", name="report"),
        ],
        [link("boom", "error", "handler", "e"), link("handler", "text", "out", "value")],
    )
    finished, _ = await _run(client, spec, {})
    assert finished["status"] == "COMPLETED"
    assert finished["outputs"] == {"report": ["handled: kaput"]}


async def test_invalid_node_input_fails_the_node_with_the_field(client: AutoGPTClient) -> None:
    spec = graph(
        "bad-input",
        [
            node("in", "text_input_block", name="n"),
            node("count", "count_items_block"),
        ],
        [link("in", "text", "count", "items")],
    )
    finished, results = await _run(client, spec, {"n": "not a list"})
    assert finished["status"] == "FAILED"
    count = next(n for n in results["node_executions"] if n["node_id"] == "count")
    assert count["status"] == "FAILED" and "items" in count["error"]


async def test_condition_iteration_llm_and_template_together(client: AutoGPTClient) -> None:
    """For each item that contains an "a", ask the LLM about it and wrap the answer."""
    spec = graph(
        "pipeline",
        [
            node("in", "text_input_block", name="csv"),
            node("split", "text_split_block"),
            node("each", "step_through_items_block"),
            node("has_a", "condition_block", operator="contains", value2="a"),
            node("ask", "llm_call_block", prompt="tell me about {topic}"),
            node("wrap", "text_template_block", template="[{{ r }}]"),
            node("out", "output_block", name="answers"),
        ],
        [
            link("in", "text", "split", "text"),
            link("split", "texts", "each", "items"),
            link("each", "item", "has_a", "value1"),
            link("has_a", "yes_output", "ask", "topic"),
            link("ask", "response", "wrap", "r"),
            link("wrap", "text", "out", "value"),
        ],
    )
    finished, results = await _run(client, spec, {"csv": "apple, kiwi, banana"})
    assert finished["status"] == "COMPLETED", finished["error"]
    assert sorted(finished["outputs"]["answers"]) == [
        "[summary: tell me about apple]",
        "[summary: tell me about banana]",
    ]
    asked = [n for n in results["node_executions"] if n["node_id"] == "ask"]
    assert sorted(n["inputs"]["topic"] for n in asked) == ["apple", "banana"]


async def test_each_run_takes_the_graph_version_active_at_that_moment(
    client: AutoGPTClient,
) -> None:
    """The executions API holds the graph versions it ran (issue 8): a new version, a
    version chosen active again, or one named in the path must each be what runs."""

    def echo(template: str) -> dict:
        return graph(
            "versions",
            [
                node("in", "text_input_block", name="word"),
                node("fmt", "text_template_block", template=template),
                node("out", "output_block", name="result"),
            ],
            [link("in", "text", "fmt", "w"), link("fmt", "text", "out", "value")],
        )

    async def run(graph_id: str, version: int | None = None) -> tuple[int, list]:
        execution = await client.execute_graph(graph_id, {"word": "x"}, graph_version=version)
        finished = await client.wait(execution["id"])
        assert finished["status"] == "COMPLETED", finished
        return finished["graph_version"], finished["outputs"]["result"]

    created = await client.create_graph(echo("one {{ w }}"))
    graphs = f"{client.base_url}/api/graphs/{created['id']}"
    assert await run(created["id"]) == (1, ["one x"])
    updated = await client.client.put(graphs, json=echo("two {{ w }}"))
    assert updated.status_code == 200, updated.text
    assert await run(created["id"]) == (2, ["two x"])
    assert await run(created["id"], 1) == (1, ["one x"])
    chosen = await client.client.put(f"{graphs}/versions/active", json={"active_graph_version": 1})
    assert chosen.status_code == 200, chosen.text
    assert await run(created["id"]) == (1, ["one x"])
    assert await run(created["id"], 2) == (2, ["two x"])
    deleted = await client.client.delete(graphs)
    assert deleted.status_code in (200, 204), deleted.text
    gone = await client.client.post(f"{graphs}/execute", json={"inputs": {"word": "x"}})
    assert gone.status_code == 404, gone.text
