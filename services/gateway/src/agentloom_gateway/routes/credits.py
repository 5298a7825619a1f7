"""Credits beyond the balance: the transaction history, usage per graph or execution, and a
graph's cost estimate. Billing owns the figures; these routes translate."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query
from pydantic import BaseModel, Field

from agentloom.billing.v1 import billing_pb2
from agentloom_gateway.access import requires
from agentloom_gateway.auth import PrincipalDep, principal_dependencies
from agentloom_gateway.deps import ServicesDep
from agentloom_gateway.errors import problem_responses
from agentloom_gateway.estimates import estimate_graph
from agentloom_gateway.routes import COMMON_PROBLEMS
from agentloom_gateway.schemas import MAX_INT32

Kind = Literal["grant", "top_up", "usage", "refund", "adjustment"]
KINDS: dict[str, billing_pb2.TransactionKind.ValueType] = {
    "grant": billing_pb2.TRANSACTION_KIND_GRANT,
    "top_up": billing_pb2.TRANSACTION_KIND_TOP_UP,
    "usage": billing_pb2.TRANSACTION_KIND_USAGE,
    "refund": billing_pb2.TRANSACTION_KIND_REFUND,
    "adjustment": billing_pb2.TRANSACTION_KIND_ADJUSTMENT,
}
KIND_NAMES = {number: name for name, number in KINDS.items()}
GROUPS = {
    "graph": billing_pb2.USAGE_GROUP_BY_GRAPH,
    "execution": billing_pb2.USAGE_GROUP_BY_EXECUTION,
}

PageSize = Annotated[int, Query(ge=1, le=100, description="Items per page.")]
PageToken = Annotated[str, Query(max_length=1024, description="`next_page_token` of a page.")]


class CreditTransaction(BaseModel):
    id: str
    kind: Kind
    amount: int = Field(description="Signed: usage negative; grants, top-ups, refunds positive.")
    balance_after: int
    graph_id: str | None = None
    execution_id: str | None = None
    node_id: str | None = None
    block_id: str | None = None
    node_execution_id: str | None = Field(
        default=None, description="Usage and refunds: the node execution charged or refunded."
    )
    description: str | None = None
    usage: dict[str, Any] | None = Field(
        default=None, description="Priced usage: bytes, run time, tokens by model."
    )
    created_at: datetime


class TransactionPage(BaseModel):
    transactions: list[CreditTransaction]
    next_page_token: str | None = None


class UsageGroup(BaseModel):
    graph_id: str | None
    execution_id: str | None = Field(description="Set when grouped by execution.")
    charged: int
    refunded: int
    net: int = Field(description="charged - refunded")
    node_executions: int = Field(description="Node executions charged.")
    last_charged_at: datetime | None


class UsagePage(BaseModel):
    group_by: Literal["graph", "execution"]
    groups: list[UsageGroup]
    next_page_token: str | None = None


class NodeCostEstimate(BaseModel):
    node_id: str
    block_id: str
    credits: int
    seconds: float


class CostEstimate(BaseModel):
    graph_id: str
    graph_version: int
    total_credits: int = Field(description="Every node run once.")
    total_seconds: float
    critical_path_seconds: float = Field(description="The longest chain of linked nodes.")
    has_cycles: bool = Field(description="True: loops run nodes again; totals are a minimum.")
    balance: int
    sufficient: bool = Field(description="Whether the balance covers total_credits.")
    nodes: list[NodeCostEstimate]


router = APIRouter(
    prefix="/api",
    dependencies=principal_dependencies(),
    responses=problem_responses(*COMMON_PROBLEMS),
)


@router.get(
    "/user/credits/transactions",
    tags=["user"],
    summary="List credit transactions, newest first",
    dependencies=[requires("credits:read")],
)
async def list_transactions(
    principal: PrincipalDep,
    services: ServicesDep,
    page_size: PageSize = 50,
    page_token: PageToken = "",
    kind: Kind | None = None,
    graph_id: uuid.UUID | None = None,
    execution_id: uuid.UUID | None = None,
) -> TransactionPage:
    reply: billing_pb2.ListTransactionsResponse = await services.billing.ListTransactions(
        billing_pb2.ListTransactionsRequest(
            user_id=principal.user_id,
            page_size=page_size,
            page_token=page_token,
            kind=KINDS[kind] if kind else billing_pb2.TRANSACTION_KIND_UNSPECIFIED,
            graph_id=str(graph_id or ""),
            execution_id=str(execution_id or ""),
        )
    )
    return TransactionPage(
        transactions=[_transaction(entry) for entry in reply.transactions],
        next_page_token=reply.next_page_token or None,
    )


def _transaction(entry: billing_pb2.Transaction) -> CreditTransaction:
    return CreditTransaction(
        id=entry.id,
        kind=KIND_NAMES[entry.kind],
        amount=entry.amount,
        balance_after=entry.balance_after,
        graph_id=entry.graph_id or None,
        execution_id=entry.execution_id or None,
        node_id=entry.node_id or None,
        block_id=entry.block_id or None,
        node_execution_id=entry.node_execution_id or None,
        description=entry.description or None,
        usage=json.loads(entry.usage_json) if entry.usage_json else None,
        created_at=entry.created_at.ToDatetime(tzinfo=UTC),
    )


@router.get(
    "/user/credits/usage",
    tags=["user"],
    summary="Credits used per graph or per execution",
    dependencies=[requires("credits:read")],
)
async def get_usage(
    principal: PrincipalDep,
    services: ServicesDep,
    group_by: Literal["graph", "execution"] = "graph",
    graph_id: Annotated[uuid.UUID | None, Query(description="Only this graph.")] = None,
    page_size: PageSize = 50,
    page_token: PageToken = "",
) -> UsagePage:
    reply: billing_pb2.GetUsageResponse = await services.billing.GetUsage(
        billing_pb2.GetUsageRequest(
            user_id=principal.user_id,
            group_by=GROUPS[group_by],
            graph_id=str(graph_id or ""),
            page_size=page_size,
            page_token=page_token,
        )
    )
    return UsagePage(
        group_by=group_by,
        groups=[
            UsageGroup(
                graph_id=group.graph_id or None,
                execution_id=group.execution_id or None,
                charged=group.charged,
                refunded=group.refunded,
                net=group.net,
                node_executions=group.node_executions,
                last_charged_at=(
                    group.last_charged_at.ToDatetime(tzinfo=UTC)
                    if group.HasField("last_charged_at")
                    else None
                ),
            )
            for group in reply.groups
        ],
        next_page_token=reply.next_page_token or None,
    )


@router.get(
    "/graphs/{graph_id}/cost-estimate",
    tags=["graphs"],
    summary="Estimate what running a graph costs",
    description="Per node and in total, from billing's cost table and the graph's shape "
    "(each node once; `has_cycles` says loops may cost more), with the caller's balance.",
    dependencies=[requires("graphs:read")],
    responses=problem_responses(404),
)
async def estimate_cost(
    graph_id: Annotated[uuid.UUID, Path(description="Graph id.")],
    principal: PrincipalDep,
    services: ServicesDep,
    version: Annotated[
        int | None, Query(ge=1, le=MAX_INT32, description="Default: the active one.")
    ] = None,
) -> CostEstimate:
    graph, reply = await estimate_graph(services, principal.user_id, graph_id, version or 0)
    return CostEstimate(
        graph_id=graph.id,
        graph_version=graph.version,
        total_credits=reply.total_credits,
        total_seconds=reply.total_seconds,
        critical_path_seconds=reply.critical_path_seconds,
        has_cycles=reply.has_cycles,
        balance=reply.balance,
        sufficient=reply.sufficient,
        nodes=[
            NodeCostEstimate(
                node_id=n.node_id, block_id=n.block_id, credits=n.credits, seconds=n.seconds
            )
            for n in reply.nodes
        ],
    )
