"""Sub-agents: a node that runs another graph as a child execution."""

from __future__ import annotations

import asyncio

from helpers import graph, link, node
from reference_client import AutoGPTClient

from agentloom_devkit.stack import Stack


async def _child(client: AutoGPTClient, template: str) -> dict:
    return await client.create_graph(
        graph(
            "child",
            [
                node("q", "text_input_block", name="q"),
                node("t", "text_template_block", template=template),
                node("out", "output_block", name="answer"),
            ],
            [link("q", "text", "t", "q"), link("t", "text", "out", "value")],
        )
    )


def _parent(child_id: str) -> dict:
    return graph(
        "parent",
        [
            node("topic", "text_input_block", name="topic"),
            node("sub", "agent_executor_block", graph_id=child_id),
            node("out", "output_block", name="final"),
        ],
        [link("topic", "text", "sub", "q"), link("sub", "answer", "out", "value")],
    )


async def test_a_sub_agent_runs_its_graph_and_yields_its_outputs(client: AutoGPTClient) -> None:
    child = await _child(client, "child says {{ q }}")
    parent = await client.create_graph(_parent(child["id"]))
    execution = await client.execute_graph(parent["id"], {"topic": "looms"})
    finished = await client.wait(execution["id"])
    assert finished["status"] == "COMPLETED", finished["error"]
    assert finished["outputs"] == {"final": ["child says looms"]}
    results = await client.get_results(execution["id"])
    sub = next(n for n in results["node_executions"] if n["node_id"] == "sub")
    assert sub["outputs"] == {"answer": ["child says looms"]}
    children = (
        await client.client.get(
            f"{client.base_url}/api/executions", params={"graph_id": child["id"]}
        )
    ).json()["executions"]
    assert [c["status"] for c in children] == ["COMPLETED"]
    assert children[0]["inputs"] == {"q": "looms"}


async def test_stopping_the_parent_stops_the_child(client: AutoGPTClient, stack: Stack) -> None:
    slow_child = await client.create_graph(
        graph(
            "slow child",
            [
                node("q", "text_input_block", name="q"),
                node("llm", "llm_call_block", prompt="[[slow:20]] {q}"),
            ],
            [link("q", "text", "llm", "q")],
        )
    )
    parent = await client.create_graph(
        graph(
            "parent of slow",
            [
                node("topic", "text_input_block", name="topic"),
                node("sub", "agent_executor_block", graph_id=slow_child["id"]),
            ],
            [link("topic", "text", "sub", "q")],
        )
    )
    execution = await client.execute_graph(parent["id"], {"topic": "x"})
    for _ in range(100):
        children = (
            await client.client.get(
                f"{client.base_url}/api/executions", params={"graph_id": slow_child["id"]}
            )
        ).json()["executions"]
        if children and children[0]["status"] == "RUNNING":
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError("the child never started")
    stop = await client.client.post(
        f"{stack.gateway_url}/api/graphs/{parent['id']}/executions/{execution['id']}/stop"
    )
    assert stop.status_code == 200
    child = await client.wait(children[0]["id"], timeout_s=5)
    assert child["status"] == "CANCELLED"
    assert (await client.wait(execution["id"]))["status"] == "CANCELLED"


async def test_a_graph_cannot_run_itself_as_a_sub_agent(client: AutoGPTClient) -> None:
    created = await client.create_graph(
        graph("self", [node("in", "text_input_block", name="q")], [])
    )
    recursive = graph(
        "self",
        [
            node("in", "text_input_block", name="q"),
            node("sub", "agent_executor_block", graph_id=created["id"]),
        ],
        [link("in", "text", "sub", "q")],
    )
    updated = await client.client.put(
        f"{client.base_url}/api/graphs/{created['id']}", json=recursive
    )
    assert updated.status_code == 200, updated.text
    execution = await client.execute_graph(created["id"], {"q": "again"})
    finished = await client.wait(execution["id"])
    assert finished["status"] == "FAILED"
    assert "already running above it" in finished["error"]
