"""The tool-calling agent block through the platform: the nodes linked from its `tools` pin
run as node executions of the same execution when the model calls them."""

from __future__ import annotations

import json

from helpers import graph, link, node
from reference_client import AutoGPTClient


def _agent_graph() -> dict:
    return graph(
        "agent with tools",
        [
            node("q", "text_input_block", name="question"),
            node("agent", "ai_agent_block", prompt="{question}"),
            node("greet", "text_template_block", template="Hello {{ who }}!"),
            node("calc", "calculator_block", operation="divide"),
            node("out", "output_block", name="answer"),
        ],
        [
            link("q", "text", "agent", "question"),
            link("agent", "tools", "greet", "who"),
            link("agent", "tools", "calc", "a"),
            link("agent", "tools", "calc", "b"),
            link("agent", "response", "out", "value"),
        ],
    )


async def test_an_agent_calls_nodes_as_tools_and_each_call_is_a_recorded_node_execution(
    client: AutoGPTClient,
) -> None:
    created = await client.create_graph(_agent_graph())
    question = (
        'Greet Ada [[tool:text_template {"who": "Ada"}]] '
        'and divide [[tool:calculator {"a": 1, "b": 0}]]'
    )
    execution = await client.execute_graph(created["id"], {"question": question})
    finished = await client.wait(execution["id"])
    assert finished["status"] == "COMPLETED", finished["error"]
    [answer] = finished["outputs"]["answer"]
    assert answer == (
        'tool results: {"text": "Hello Ada!"} | '
        + json.dumps({"error": "tool 'calculator' failed: division by zero"})
    )

    results = await client.get_results(execution["id"])
    by_node: dict[str, list[dict]] = {}
    for node_execution in results["node_executions"]:
        by_node.setdefault(node_execution["node_id"], []).append(node_execution)
    # Each tool ran once, for its call only (never on its own), with the model's arguments
    # over the node's defaults; the failed call is recorded as failed.
    [greet] = by_node["greet"]
    assert greet["status"] == "COMPLETED"
    assert greet["inputs"] == {"template": "Hello {{ who }}!", "who": "Ada"}
    assert greet["outputs"] == {"text": ["Hello Ada!"]}
    assert greet["cost"] == 1
    [calc] = by_node["calc"]
    assert calc["status"] == "FAILED"
    assert calc["inputs"] == {"operation": "divide", "a": 1, "b": 0}
    assert calc["error"] == "division by zero"
    [agent] = by_node["agent"]
    calls = agent["outputs"]["tool_calls"][0]
    assert [(c["tool"], c["arguments"]) for c in calls] == [
        ("text_template", {"who": "Ada"}),
        ("calculator", {"a": 1, "b": 0}),
    ]
    # The tool calls are charged and counted with the execution's nodes.
    assert finished["stats"]["cost"] == sum(n["cost"] for n in results["node_executions"])
    assert finished["stats"]["cost"] >= greet["cost"] + agent["cost"]


async def test_tool_links_are_checked_when_the_graph_is_saved(client: AutoGPTClient) -> None:
    unknown_pin = _agent_graph()
    unknown_pin["links"].append(link("agent", "tools", "calc", "no_such_pin"))
    response = await client.client.post(f"{client.base_url}/api/graphs", json=unknown_pin)
    assert response.status_code == 400
    assert "no_such_pin" in response.text

    output_as_tool = _agent_graph()
    output_as_tool["links"].append(link("agent", "tools", "out", "value"))
    response = await client.client.post(f"{client.base_url}/api/graphs", json=output_as_tool)
    assert response.status_code == 400
    assert "cannot be an agent's tool" in response.text
