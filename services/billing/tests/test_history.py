"""Transaction history pages, usage per graph and per execution, and estimates over gRPC."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import grpc
import pytest

from agentloom.billing.v1 import billing_pb2
from agentloom_common.errors import error_info

if TYPE_CHECKING:
    from agentloom.billing.v1.billing_pb2_grpc import BillingServiceAsyncStub as Stub

pytestmark = pytest.mark.usefixtures("ledger_balanced")
USAGE = billing_pb2.TRANSACTION_KIND_USAGE


async def spend(billing: Stub, user_id: str) -> None:
    """g1: e1 (3 nodes of 2, one refunded), e2 (1 node of 5); g2: e3 (1 node of 1)."""
    plan = [("g1", "e1", 2)] * 3 + [("g1", "e2", 5), ("g2", "e3", 1)]
    for i, (graph, execution, amount) in enumerate(plan):
        await billing.Charge(
            billing_pb2.ChargeRequest(
                user_id=user_id,
                idempotency_key=f"{user_id}-{i}",
                amount=amount,
                graph_id=graph,
                execution_id=execution,
                node_id=f"n{i}",
            )
        )
    await billing.Refund(
        billing_pb2.RefundRequest(user_id=user_id, node_execution_id=f"{user_id}-0")
    )


async def pages(billing: Stub, **query: object) -> list[list[billing_pb2.Transaction]]:
    result, token = [], ""
    while True:
        reply = await billing.ListTransactions(
            billing_pb2.ListTransactionsRequest(page_token=token, **query)  # type: ignore[arg-type]
        )
        result.append(list(reply.transactions))
        token = reply.next_page_token
        if not token:
            return result


async def test_history_is_newest_first_in_cursor_pages(
    billing: Stub, user_id: str, grant: int
) -> None:
    await spend(billing, user_id)
    listed = await pages(billing, user_id=user_id, page_size=3)
    assert [len(page) for page in listed] == [3, 3, 1]
    rows = [row for page in listed for row in page]
    assert [row.amount for row in rows] == [2, -1, -5, -2, -2, -2, grant]
    assert rows[0].kind == billing_pb2.TRANSACTION_KIND_REFUND
    assert rows[0].node_execution_id == f"{user_id}-0"
    assert [row.balance_after for row in rows][-1] == grant
    assert rows[0].balance_after == grant - 10
    assert all(row.created_at.seconds > 0 for row in rows)


async def test_history_filters_by_kind_graph_and_execution(billing: Stub, user_id: str) -> None:
    await spend(billing, user_id)

    async def amounts(**query: object) -> list[int]:
        return [r.amount for page in await pages(billing, user_id=user_id, **query) for r in page]

    assert await amounts(kind=USAGE) == [-1, -5, -2, -2, -2]
    assert await amounts(graph_id="g2") == [-1]
    assert await amounts(execution_id="e1") == [2, -2, -2, -2]
    assert await amounts(execution_id="e1", kind=USAGE) == [-2, -2, -2]


async def test_history_shows_only_the_callers_rows(billing: Stub, user_id: str) -> None:
    await spend(billing, "someone-else-" + user_id)
    listed = await pages(billing, user_id=user_id)
    assert [row.kind for page in listed for row in page] == [billing_pb2.TRANSACTION_KIND_GRANT]


@pytest.mark.parametrize("token", ["garbage", "eyJhZnRlciI6ICJ4In0", "e30"])
async def test_forged_page_token_is_invalid(billing: Stub, user_id: str, token: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await billing.ListTransactions(
            billing_pb2.ListTransactionsRequest(user_id=user_id, page_token=token)
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(raised.value)[1] == {"field": "page_token"}


async def test_usage_per_graph_and_per_execution_nets_refunds(billing: Stub, user_id: str) -> None:
    await spend(billing, user_id)
    by_graph = await billing.GetUsage(
        billing_pb2.GetUsageRequest(user_id=user_id, group_by=billing_pb2.USAGE_GROUP_BY_GRAPH)
    )
    assert [
        (g.graph_id, g.charged, g.refunded, g.net, g.node_executions) for g in by_graph.groups
    ] == [
        ("g1", 11, 2, 9, 4),
        ("g2", 1, 0, 1, 1),
    ]
    first = await billing.GetUsage(
        billing_pb2.GetUsageRequest(
            user_id=user_id,
            group_by=billing_pb2.USAGE_GROUP_BY_EXECUTION,
            graph_id="g1",
            page_size=1,
        )
    )
    second = await billing.GetUsage(
        billing_pb2.GetUsageRequest(
            user_id=user_id,
            group_by=billing_pb2.USAGE_GROUP_BY_EXECUTION,
            graph_id="g1",
            page_token=first.next_page_token,
        )
    )
    groups = [*first.groups, *second.groups]
    assert [(g.execution_id, g.graph_id, g.net) for g in groups] == [
        ("e1", "g1", 4),
        ("e2", "g1", 5),
    ]
    assert second.next_page_token == ""


async def test_usage_needs_a_grouping(billing: Stub, user_id: str) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await billing.GetUsage(billing_pb2.GetUsageRequest(user_id=user_id))
    assert error_info(raised.value)[1] == {"field": "group_by"}


async def test_estimate_prices_nodes_and_compares_with_the_balance(
    billing: Stub, user_id: str, grant: int
) -> None:
    request = billing_pb2.EstimateCostRequest(
        nodes=[
            billing_pb2.EstimateNode(id="in", block_id="text_input_block", input_default_json="{}"),
            billing_pb2.EstimateNode(
                id="llm",
                block_id="llm_call_block",
                input_default_json=json.dumps({"prompt": "x" * 4000, "max_tokens": 1000}),
            ),
        ],
        links=[billing_pb2.EstimateLink(source_id="in", sink_id="llm")],
        user_id=user_id,
    )
    reply = await billing.EstimateCost(request)
    # llm: 1 per run + gpt-4o-mini 1000 prompt tokens at 1/1k + 1000 completion at 2/1k
    assert [(n.node_id, n.credits) for n in reply.nodes] == [("in", 0), ("llm", 4)]
    assert (reply.total_credits, reply.balance, reply.sufficient) == (4, grant, True)
    assert reply.critical_path_seconds == 3
    anonymous = await billing.EstimateCost(billing_pb2.EstimateCostRequest(nodes=request.nodes))
    assert (anonymous.total_credits, anonymous.sufficient) == (4, False)


async def test_estimate_refuses_bad_node_input(billing: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await billing.EstimateCost(
            billing_pb2.EstimateCostRequest(
                nodes=[billing_pb2.EstimateNode(id="n", block_id="b", input_default_json="[")]
            )
        )
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
