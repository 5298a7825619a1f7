"""Proto <-> domain translation for the billing servicer."""

from __future__ import annotations

import json

from google.protobuf.timestamp_pb2 import Timestamp

from agentloom.billing.v1 import billing_pb2
from agentloom_billing import history
from agentloom_billing.domain import (
    ChargeRequest,
    CreditRequest,
    RefundRequest,
    TransactionKind,
    UsageFigures,
    optional_id,
)
from agentloom_billing.estimate import GraphEstimate, NodeSpec
from agentloom_common.errors import InvalidArgument

KINDS: dict[billing_pb2.TransactionKind.ValueType, TransactionKind] = {
    billing_pb2.TRANSACTION_KIND_GRANT: TransactionKind.GRANT,
    billing_pb2.TRANSACTION_KIND_TOP_UP: TransactionKind.TOP_UP,
    billing_pb2.TRANSACTION_KIND_USAGE: TransactionKind.USAGE,
    billing_pb2.TRANSACTION_KIND_REFUND: TransactionKind.REFUND,
    billing_pb2.TRANSACTION_KIND_ADJUSTMENT: TransactionKind.ADJUSTMENT,
}
KIND_NUMBERS = {kind: number for number, kind in KINDS.items()}
GROUPS = {
    billing_pb2.USAGE_GROUP_BY_GRAPH: history.GroupBy.GRAPH,
    billing_pb2.USAGE_GROUP_BY_EXECUTION: history.GroupBy.EXECUTION,
}


def charge_request(request: billing_pb2.ChargeRequest) -> ChargeRequest:
    usage = request.usage
    figures = UsageFigures.parse(
        input_bytes=usage.input_bytes,
        output_bytes=usage.output_bytes,
        duration_ms=usage.duration_ms,
        tokens=tuple((t.model, t.prompt_tokens, t.completion_tokens) for t in usage.tokens),
    )
    return ChargeRequest.parse(
        user_id=request.user_id,
        idempotency_key=request.idempotency_key,
        amount=request.amount if request.HasField("amount") else None,
        graph_id=request.graph_id,
        execution_id=request.execution_id,
        node_id=request.node_id,
        block_id=request.block_id,
        usage=figures,
        execution_budget=(
            request.execution_budget if request.HasField("execution_budget") else None
        ),
    )


def refund_request(request: billing_pb2.RefundRequest) -> RefundRequest:
    return RefundRequest.parse(
        user_id=request.user_id,
        node_execution_id=request.node_execution_id,
        amount=request.amount if request.HasField("amount") else None,
        reason=request.reason,
    )


def credit_request(
    kind: TransactionKind,
    request: billing_pb2.GrantRequest | billing_pb2.TopUpRequest | billing_pb2.AdjustRequest,
) -> CreditRequest:
    return CreditRequest.parse(
        kind=kind,
        user_id=request.user_id,
        idempotency_key=request.idempotency_key,
        amount=request.amount,
        description=request.description,
    )


def transaction_query(request: billing_pb2.ListTransactionsRequest) -> history.TransactionQuery:
    kind = None
    if request.kind != billing_pb2.TRANSACTION_KIND_UNSPECIFIED:
        if request.kind not in KINDS:
            raise InvalidArgument("kind is not known", metadata={"field": "kind"})
        kind = KINDS[request.kind]
    return history.TransactionQuery(
        size=history.page_size(request.page_size),
        token=request.page_token,
        kind=kind,
        graph_id=optional_id(request.graph_id, "graph_id"),
        execution_id=optional_id(request.execution_id, "execution_id"),
    )


def usage_query(request: billing_pb2.GetUsageRequest) -> history.UsageQuery:
    if request.group_by not in GROUPS:
        raise InvalidArgument("group_by must be GRAPH or EXECUTION", metadata={"field": "group_by"})
    return history.UsageQuery(
        group_by=GROUPS[request.group_by],
        size=history.page_size(request.page_size),
        token=request.page_token,
        graph_id=optional_id(request.graph_id, "graph_id"),
    )


def transaction(entry: history.Transaction) -> billing_pb2.Transaction:
    created_at = Timestamp()
    created_at.FromDatetime(entry.created_at)
    return billing_pb2.Transaction(
        id=str(entry.id),
        kind=KIND_NUMBERS[entry.kind],
        amount=entry.amount,
        balance_after=entry.balance_after,
        graph_id=entry.graph_id or "",
        execution_id=entry.execution_id or "",
        node_id=entry.node_id or "",
        block_id=entry.block_id or "",
        node_execution_id=entry.node_execution_id or "",
        description=entry.description or "",
        created_at=created_at,
        usage_json=json.dumps(entry.usage) if entry.usage else "",
    )


def usage_group(group: history.UsageGroup) -> billing_pb2.UsageGroup:
    message = billing_pb2.UsageGroup(
        graph_id=group.graph_id or "",
        execution_id=group.execution_id or "",
        charged=group.charged,
        refunded=group.refunded,
        net=group.net,
        node_executions=group.node_executions,
    )
    if group.last_charged_at is not None:
        message.last_charged_at.FromDatetime(group.last_charged_at)
    return message


def estimate_nodes(request: billing_pb2.EstimateCostRequest) -> list[NodeSpec]:
    return [
        NodeSpec.parse(id=n.id, block_id=n.block_id, input_default_json=n.input_default_json)
        for n in request.nodes
    ]


def estimate_response(
    estimate: GraphEstimate, balance: int | None
) -> billing_pb2.EstimateCostResponse:
    return billing_pb2.EstimateCostResponse(
        nodes=[
            billing_pb2.NodeEstimate(
                node_id=n.node_id, block_id=n.block_id, credits=n.credits, seconds=n.seconds
            )
            for n in estimate.nodes
        ],
        total_credits=estimate.total_credits,
        total_seconds=estimate.total_seconds,
        critical_path_seconds=estimate.critical_path_seconds,
        has_cycles=estimate.has_cycles,
        balance=balance or 0,
        sufficient=balance is not None and balance >= estimate.total_credits,
    )
