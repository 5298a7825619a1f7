"""Credit history, usage and cost estimates through the gateway, against real graphs, blocks
and billing servers (started here) and the real identity schema."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from agentloom.billing.v1 import billing_pb2, billing_pb2_grpc
from agentloom_billing import server as billing_server
from agentloom_billing.settings import BillingSettings
from agentloom_blocks import server as blocks_server
from agentloom_blocks.settings import BlocksSettings
from agentloom_common.grpc_client import create_channel
from agentloom_common.migrations import upgrade
from agentloom_gateway.app import create_app
from agentloom_gateway.balance import BalanceGate
from agentloom_gateway.settings import GatewaySettings
from agentloom_graphs import server as graphs_server
from agentloom_graphs.settings import GraphsSettings

GRANT = 500


@pytest.fixture(scope="module")
async def backends(database_url: str, amqp_url: str) -> AsyncIterator[dict[str, str]]:
    """Blocks, graphs and billing servers on free ports, migrated into the session database."""
    await asyncio.to_thread(upgrade, database_url, "agentloom_graphs", "graphs")
    await asyncio.to_thread(upgrade, database_url, "agentloom_billing", "billing")
    blocks = await blocks_server.start(BlocksSettings(listen_addr="127.0.0.1:0"))
    graphs = await graphs_server.start(
        GraphsSettings(
            listen_addr="127.0.0.1:0",
            database_url=database_url,
            amqp_url=amqp_url,
            blocks_addr=f"127.0.0.1:{blocks.port}",
        )
    )
    billing = await billing_server.start(
        BillingSettings(listen_addr="127.0.0.1:0", database_url=database_url, starting_grant=GRANT)
    )
    yield {
        "blocks_addr": f"127.0.0.1:{blocks.port}",
        "graphs_addr": f"127.0.0.1:{graphs.port}",
        "billing_addr": f"127.0.0.1:{billing.port}",
    }
    await billing.stop(grace_s=0)
    await graphs.stop(grace_s=0)
    await blocks.stop(grace_s=0)


@pytest.fixture(scope="module")
async def api(
    settings: GatewaySettings, backends: dict[str, str]
) -> AsyncIterator[httpx.AsyncClient]:
    app: FastAPI = create_app(settings.model_copy(update=backends))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


@pytest.fixture(scope="module")
async def billing(
    backends: dict[str, str],
) -> AsyncIterator[billing_pb2_grpc.BillingServiceAsyncStub]:
    channel = create_channel(backends["billing_addr"], deadline_s=10)
    yield billing_pb2_grpc.BillingServiceStub(channel)  # type: ignore[misc]
    await channel.close()


async def spend(billing: Any, user_id: str) -> tuple[str, str, str]:
    """Three charges in two executions of one graph, the first refunded; their ids."""
    graph, first, second = (str(uuid.uuid4()) for _ in range(3))
    for i, (execution, amount) in enumerate([(first, 3), (first, 4), (second, 10)]):
        await billing.Charge(
            billing_pb2.ChargeRequest(
                user_id=user_id,
                idempotency_key=f"{execution}-{i}",
                amount=amount,
                graph_id=graph,
                execution_id=execution,
                node_id=f"n{i}",
                block_id="text_template_block",
            )
        )
    await billing.Refund(
        billing_pb2.RefundRequest(user_id=user_id, node_execution_id=f"{first}-0", reason="lost")
    )
    return graph, first, second


async def test_transactions_are_paged_newest_first_and_filtered(
    api: httpx.AsyncClient, billing: Any, caller: Any
) -> None:
    graph, first, _ = await spend(billing, caller.user_id)
    url = "/api/user/credits/transactions"
    page = await api.get(url, params={"page_size": 3}, headers=caller.headers)
    assert page.status_code == 200, page.text
    body = page.json()
    assert [t["kind"] for t in body["transactions"]] == ["refund", "usage", "usage"]
    assert body["transactions"][0]["amount"] == 3
    assert body["transactions"][0]["node_execution_id"] == f"{first}-0"
    assert body["transactions"][0]["description"] == "lost"
    rest = await api.get(
        url, params={"page_token": body["next_page_token"]}, headers=caller.headers
    )
    assert [(t["kind"], t["amount"]) for t in rest.json()["transactions"]] == [
        ("usage", -3),
        ("grant", GRANT),
    ]
    assert rest.json()["next_page_token"] is None
    usage = await api.get(
        url, params={"kind": "usage", "execution_id": first}, headers=caller.headers
    )
    assert [t["amount"] for t in usage.json()["transactions"]] == [-4, -3]
    by_graph = await api.get(url, params={"graph_id": graph}, headers=caller.headers)
    assert len(by_graph.json()["transactions"]) == 4


async def test_usage_groups_by_graph_and_by_execution(
    api: httpx.AsyncClient, billing: Any, caller: Any
) -> None:
    graph, first, second = await spend(billing, caller.user_id)
    url = "/api/user/credits/usage"
    graphs = (await api.get(url, headers=caller.headers)).json()
    assert graphs["group_by"] == "graph"
    assert [(g["graph_id"], g["charged"], g["refunded"], g["net"]) for g in graphs["groups"]] == [
        (graph, 17, 3, 14)
    ]
    executions = await api.get(url, params={"group_by": "execution"}, headers=caller.headers)
    groups = {g["execution_id"]: g for g in executions.json()["groups"]}
    assert {key: (g["net"], g["node_executions"]) for key, g in groups.items()} == {
        first: (4, 2),
        second: (10, 1),
    }


async def test_bad_filters_are_refused_and_nothing_leaks(
    api: httpx.AsyncClient, billing: Any, caller: Any, make_caller: Any
) -> None:
    await spend(billing, caller.user_id)
    url = "/api/user/credits/transactions"
    bad_kind = await api.get(url, params={"kind": "theft"}, headers=caller.headers)
    assert bad_kind.status_code == 422
    assert bad_kind.headers["content-type"].startswith("application/problem+json")
    bad_token = await api.get(url, params={"page_token": "nope"}, headers=caller.headers)
    assert (bad_token.status_code, bad_token.json()["code"]) == (400, "INVALID_ARGUMENT")
    bad_group = await api.get(
        "/api/user/credits/usage", params={"group_by": "day"}, headers=caller.headers
    )
    assert bad_group.status_code == 422
    stranger = await make_caller()
    theirs = (await api.get(url, headers=stranger.headers)).json()["transactions"]
    assert [(t["kind"], t["amount"]) for t in theirs] == [("grant", GRANT)]
    assert (await api.get(url)).status_code == 401


def llm_graph() -> dict[str, Any]:
    def node(node_id: str, block_id: str, **inputs: Any) -> dict[str, Any]:
        return {"id": node_id, "block_id": block_id, "input_default": inputs}

    def link(source: str, out: str, sink: str, pin: str) -> dict[str, Any]:
        return {"source_id": source, "source_name": out, "sink_id": sink, "sink_name": pin}

    return {
        "name": "ask",
        "nodes": [
            node("in", "text_input_block", name="topic"),
            node("ask", "llm_call_block", prompt="x" * 4000, max_tokens=1000),
            node("out", "output_block", name="answer"),
        ],
        "links": [link("in", "text", "ask", "topic"), link("ask", "response", "out", "value")],
    }


async def test_cost_estimate_prices_each_node_and_compares_with_the_balance(
    api: httpx.AsyncClient, caller: Any
) -> None:
    created = await api.post("/api/graphs", json=llm_graph(), headers=caller.headers)
    assert created.status_code == 201, created.text
    graph_id = created.json()["id"]
    response = await api.get(f"/api/graphs/{graph_id}/cost-estimate", headers=caller.headers)
    assert response.status_code == 200, response.text
    estimate = response.json()
    # llm_call_block: 1 per run + gpt-4o-mini 1000 prompt tokens at 1/1k + 1000 at 2/1k.
    assert {n["node_id"]: n["credits"] for n in estimate["nodes"]} == {"in": 0, "ask": 4, "out": 0}
    assert (estimate["total_credits"], estimate["graph_version"]) == (4, 1)
    assert (estimate["balance"], estimate["sufficient"], estimate["has_cycles"]) == (
        GRANT,
        True,
        False,
    )
    assert estimate["critical_path_seconds"] == 3


async def test_cost_estimate_of_a_foreign_or_unknown_graph_is_the_same_404(
    api: httpx.AsyncClient, caller: Any, make_caller: Any
) -> None:
    created = await api.post("/api/graphs", json=llm_graph(), headers=caller.headers)
    graph_id = created.json()["id"]
    stranger = await make_caller()
    foreign = await api.get(f"/api/graphs/{graph_id}/cost-estimate", headers=stranger.headers)
    unknown = await api.get(f"/api/graphs/{uuid.uuid4()}/cost-estimate", headers=caller.headers)
    assert foreign.status_code == unknown.status_code == 404
    assert foreign.json()["detail"] == unknown.json()["detail"]
    bad_version = await api.get(
        f"/api/graphs/{graph_id}/cost-estimate", params={"version": 0}, headers=caller.headers
    )
    assert bad_version.status_code == 422


async def test_a_balance_with_credit_to_spare_is_remembered_briefly_and_a_low_one_never(
    billing: billing_pb2_grpc.BillingServiceAsyncStub,
) -> None:
    """BalanceGate against the real billing server: a yes for a balance of at least
    `min_balance` is reused until `cache_s` passes (even though the balance ran out
    meanwhile); a used-up balance and a low one are asked about every time, so a top-up
    and a running-out both count at once."""
    now = [0.0]
    gate = BalanceGate(billing, cache_s=1.0, min_balance=100, clock=lambda: now[0])
    rich, poor = f"rich-{uuid.uuid4().hex[:8]}", f"poor-{uuid.uuid4().hex[:8]}"

    async def charge(user_id: str, amount: int) -> None:
        await billing.Charge(
            billing_pb2.ChargeRequest(
                user_id=user_id,
                idempotency_key=uuid.uuid4().hex,
                amount=amount,
                graph_id="g",
                execution_id=str(uuid.uuid4()),
                node_id="n",
                block_id="text_template_block",
            )
        )

    first = await gate.check(rich)
    assert first.sufficient and first.balance == GRANT
    await charge(rich, GRANT)
    assert (await gate.check(rich)).sufficient  # remembered within the second
    now[0] = 1.5
    used_up = await gate.check(rich)
    assert not used_up.sufficient and used_up.balance == 0
    await billing.Grant(
        billing_pb2.GrantRequest(user_id=rich, idempotency_key=uuid.uuid4().hex, amount=5)
    )
    assert (await gate.check(rich)).sufficient  # a "no" is never remembered

    await charge(poor, GRANT - 50)  # opens the account with the grant, leaves 50
    low = await gate.check(poor)
    assert low.sufficient and low.balance == 50
    await charge(poor, 50)
    assert not (await gate.check(poor)).sufficient  # below min_balance: asked again
