"""Credits end to end: a 402 at start changes nothing; an execution that runs out mid-way
or past its max_credits ends FAILED with the reason, the ledger consistent."""

from __future__ import annotations

import asyncio
import uuid

import grpc
import httpx
from helpers import graph, link, node

from agentloom.billing.v1 import billing_pb2, billing_pb2_grpc
from agentloom_devkit.stack import Stack


def _chain(length: int) -> dict:
    nodes = [node("in", "text_input_block", name="w")]
    links = []
    previous, pin = "in", "text"
    for i in range(length):
        nodes.append(node(f"t{i}", "text_template_block", template="{{ x }}."))
        links.append(link(previous, pin, f"t{i}", "x"))
        previous, pin = f"t{i}", "text"
    return graph("chain", nodes, links)


async def _user(stack: Stack, balance: int | None = None) -> httpx.AsyncClient:
    """A new user; with `balance`, an operator adjustment (billing's own API) sets it."""
    user_id, key = await stack.create_user(f"credits-{uuid.uuid4().hex[:8]}@example.com", "C")
    headers = {"X-API-Key": key}
    if balance is not None:
        async with httpx.AsyncClient(base_url=stack.gateway_url, headers=headers) as probe:
            current = (await probe.get("/api/user/credits")).json()["credits"]
        async with grpc.aio.insecure_channel(f"127.0.0.1:{stack.config.ports.billing}") as channel:
            await billing_pb2_grpc.BillingServiceStub(channel).Adjust(
                billing_pb2.AdjustRequest(
                    user_id=user_id,
                    idempotency_key=f"test-balance-{user_id}",
                    amount=balance - current,
                    description="test setup",
                )
            )
    return httpx.AsyncClient(base_url=stack.gateway_url, headers=headers, timeout=30)


async def _wait(http: httpx.AsyncClient, execution_id: str) -> dict:
    for _ in range(300):
        execution = (await http.get(f"/api/executions/{execution_id}")).json()
        if execution["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            return execution
        await asyncio.sleep(0.1)
    raise AssertionError("execution never ended")


async def test_max_credits_caps_an_execution(stack: Stack) -> None:
    async with await _user(stack) as http:
        before = (await http.get("/api/user/credits")).json()["credits"]
        created = (await http.post("/api/graphs", json=_chain(5))).json()
        response = await http.post(
            f"/api/graphs/{created['id']}/execute", json={"inputs": {"w": "x"}, "max_credits": 2}
        )
        assert response.status_code == 201, response.text
        assert response.json()["max_credits"] == 2
        finished = await _wait(http, response.json()["id"])
        assert finished["status"] == "FAILED"
        assert "max_credits" in finished["error"]
        assert finished["stats"]["cost"] == 2
        after = (await http.get("/api/user/credits")).json()["credits"]
        assert before - after == 2


async def test_running_out_mid_way_then_402_that_changes_nothing(stack: Stack) -> None:
    async with await _user(stack, balance=4) as http:
        created = (await http.post("/api/graphs", json=_chain(3))).json()
        first = await http.post(f"/api/graphs/{created['id']}/execute", json={"inputs": {"w": "a"}})
        assert (await _wait(http, first.json()["id"]))["status"] == "COMPLETED"
        second = await http.post(
            f"/api/graphs/{created['id']}/execute", json={"inputs": {"w": "b"}}
        )
        assert second.status_code == 201
        ran_out = await _wait(http, second.json()["id"])
        assert ran_out["status"] == "FAILED"
        assert "insufficient credits" in ran_out["error"]
        assert ran_out["stats"]["cost"] == 1
        assert (await http.get("/api/user/credits")).json()["credits"] == 0

        before = (await http.get("/api/executions", params={"page_size": 100})).json()
        refused = await http.post(
            f"/api/graphs/{created['id']}/execute", json={"inputs": {"w": "c"}}
        )
        assert refused.status_code == 402
        assert refused.headers["content-type"].startswith("application/problem+json")
        problem = refused.json()
        assert problem["code"] == "INSUFFICIENT_CREDITS"
        assert problem["balance"] == 0 and problem["estimated_cost"] == 3
        after = (await http.get("/api/executions", params={"page_size": 100})).json()
        assert after["executions"] == before["executions"]
        assert (await http.get("/api/user/credits")).json()["credits"] == 0
