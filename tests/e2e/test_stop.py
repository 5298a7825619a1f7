"""Stopping an execution interrupts its running block, wherever it runs, promptly."""

from __future__ import annotations

import asyncio
import time

from helpers import graph, node
from reference_client import AutoGPTClient

from agentloom_devkit.stack import Stack


async def test_stop_cancels_a_running_block_within_seconds(
    client: AutoGPTClient, stack: Stack
) -> None:
    spec = graph("slow", [node("slow", "llm_call_block", prompt="[[slow:15]] take your time")], [])
    created = await client.create_graph(spec)
    execution = await client.execute_graph(created["id"], {})
    exec_id = execution["id"]
    for _ in range(100):
        results = await client.get_results(exec_id)
        if any(n["status"] == "RUNNING" for n in results["node_executions"]):
            break
        await asyncio.sleep(0.05)
    else:
        raise AssertionError("the slow node never started")

    started = time.monotonic()
    stop_url = f"{stack.gateway_url}/api/graphs/{created['id']}/executions/{exec_id}/stop"
    stopped = await client.client.post(stop_url)
    assert stopped.status_code == 200, stopped.text
    assert stopped.json()["status"] == "CANCELLED"
    again = await client.client.post(stop_url)
    assert again.status_code == 200 and again.json()["status"] == "CANCELLED"

    finished = await client.wait(exec_id, timeout_s=5)
    assert finished["status"] == "CANCELLED"
    assert time.monotonic() - started < 3
    results = await client.get_results(exec_id)
    assert [n["status"] for n in results["node_executions"]] == ["CANCELLED"]
    # Nothing is charged for the interrupted node.
    assert results["node_executions"][0]["cost"] == 0


async def test_stop_through_another_graph_id_is_not_found(
    client: AutoGPTClient, stack: Stack
) -> None:
    spec = graph("slow2", [node("slow", "llm_call_block", prompt="[[slow:2]] hi")], [])
    created = await client.create_graph(spec)
    other = await client.create_graph(graph("other", [], []))
    execution = await client.execute_graph(created["id"], {})
    response = await client.client.post(
        f"{stack.gateway_url}/api/graphs/{other['id']}/executions/{execution['id']}/stop"
    )
    assert response.status_code == 404
    assert response.headers["content-type"].startswith("application/problem+json")
    await client.wait(execution["id"])
