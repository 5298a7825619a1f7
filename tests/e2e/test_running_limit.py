"""A user's running executions are capped (AGENTLOOM_MAX_RUNNING_PER_USER, 50 in this
stack): the executions API starts an execution in the request that creates it, and parks it
(QUEUED) when its user is at the cap, until the end of a running one frees a slot."""

from __future__ import annotations

import asyncio

from helpers import User, graph, node
from reference_client import AutoGPTClient

from agentloom_devkit.stack import Stack

LIMIT = 50


async def _status(client: AutoGPTClient, exec_id: str) -> str:
    return str((await client.get_execution(exec_id))["status"])


async def test_an_execution_past_the_cap_waits_for_a_slot(stack: Stack) -> None:
    user = User(*await stack.create_user("capped@example.com", "Capped"))
    client = AutoGPTClient(base_url=stack.gateway_url, api_key=user.api_key)
    try:
        spec = graph("slow", [node("slow", "llm_call_block", prompt="[[slow:30]] wait")], [])
        graph_id = (await client.create_graph(spec))["id"]
        running = [await client.execute_graph(graph_id, {}) for _ in range(LIMIT)]
        # Started by the request itself: RUNNING in the answer, no scheduler round trip.
        assert {execution["status"] for execution in running} == {"RUNNING"}

        waiting = await client.execute_graph(graph_id, {})
        assert waiting["status"] == "QUEUED"
        await asyncio.sleep(1.0)
        assert await _status(client, waiting["id"]) == "QUEUED"

        stop_url = f"{stack.gateway_url}/api/graphs/{graph_id}/executions/{{}}/stop"
        stopped = await client.client.post(stop_url.format(running[0]["id"]))
        assert stopped.status_code == 200, stopped.text
        for _ in range(100):
            if await _status(client, waiting["id"]) == "RUNNING":
                break
            await asyncio.sleep(0.1)
        else:
            raise AssertionError("the parked execution did not start when a slot freed")

        for execution in [*running[1:], waiting]:
            response = await client.client.post(stop_url.format(execution["id"]))
            assert response.status_code == 200, response.text
            assert response.json()["status"] == "CANCELLED"
    finally:
        await client.aclose()
