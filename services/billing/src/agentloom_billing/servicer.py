"""gRPC translation for billing: proto in, ledger call, proto out."""

from __future__ import annotations

from typing import TypeAlias

import grpc

from agentloom.billing.v1 import billing_pb2, billing_pb2_grpc
from agentloom_billing import convert
from agentloom_billing.domain import CreditOutcome, TransactionKind, optional_id
from agentloom_billing.ledger import Ledger

Context: TypeAlias = grpc.aio.ServicerContext


# Block ids one ListFreeBlocks call may ask about.
MAX_FREE_BLOCK_QUERY = 10_000


class BillingServicer(billing_pb2_grpc.BillingServiceServicer):
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def GetBalance(
        self, request: billing_pb2.GetBalanceRequest, context: Context
    ) -> billing_pb2.GetBalanceResponse:
        return billing_pb2.GetBalanceResponse(balance=await self._ledger.balance(request.user_id))

    async def CheckBalance(
        self, request: billing_pb2.CheckBalanceRequest, context: Context
    ) -> billing_pb2.CheckBalanceResponse:
        check = await self._ledger.check(request.user_id, request.amount)
        return billing_pb2.CheckBalanceResponse(sufficient=check.sufficient, balance=check.balance)

    async def Charge(
        self, request: billing_pb2.ChargeRequest, context: Context
    ) -> billing_pb2.ChargeResponse:
        outcome = await self._ledger.charge(convert.charge_request(request))
        return billing_pb2.ChargeResponse(
            transaction_id=str(outcome.transaction_id or ""),
            balance=outcome.balance,
            charged=outcome.charged,
            amount=outcome.amount,
        )

    async def Refund(
        self, request: billing_pb2.RefundRequest, context: Context
    ) -> billing_pb2.RefundResponse:
        outcome = await self._ledger.refund(convert.refund_request(request))
        return billing_pb2.RefundResponse(
            transaction_id=str(outcome.transaction_id),
            amount=outcome.amount,
            balance=outcome.balance,
            refunded=outcome.refunded,
        )

    async def Grant(
        self, request: billing_pb2.GrantRequest, context: Context
    ) -> billing_pb2.GrantResponse:
        outcome = await self._credit(TransactionKind.GRANT, request)
        return billing_pb2.GrantResponse(
            transaction_id=str(outcome.transaction_id),
            balance=outcome.balance,
            applied=outcome.applied,
        )

    async def TopUp(
        self, request: billing_pb2.TopUpRequest, context: Context
    ) -> billing_pb2.TopUpResponse:
        outcome = await self._credit(TransactionKind.TOP_UP, request)
        return billing_pb2.TopUpResponse(
            transaction_id=str(outcome.transaction_id),
            balance=outcome.balance,
            applied=outcome.applied,
        )

    async def Adjust(
        self, request: billing_pb2.AdjustRequest, context: Context
    ) -> billing_pb2.AdjustResponse:
        outcome = await self._credit(TransactionKind.ADJUSTMENT, request)
        return billing_pb2.AdjustResponse(
            transaction_id=str(outcome.transaction_id),
            balance=outcome.balance,
            applied=outcome.applied,
        )

    async def _credit(
        self,
        kind: TransactionKind,
        request: billing_pb2.GrantRequest | billing_pb2.TopUpRequest | billing_pb2.AdjustRequest,
    ) -> CreditOutcome:
        return await self._ledger.credit(convert.credit_request(kind, request))

    async def SetDailyCap(
        self, request: billing_pb2.SetDailyCapRequest, context: Context
    ) -> billing_pb2.SetDailyCapResponse:
        cap = request.daily_cap if request.HasField("daily_cap") else None
        in_force, spent = await self._ledger.set_daily_cap(request.user_id, cap)
        return billing_pb2.SetDailyCapResponse(daily_cap=in_force, spent_today=spent)

    async def ListTransactions(
        self, request: billing_pb2.ListTransactionsRequest, context: Context
    ) -> billing_pb2.ListTransactionsResponse:
        page = await self._ledger.transactions(request.user_id, convert.transaction_query(request))
        return billing_pb2.ListTransactionsResponse(
            transactions=[convert.transaction(entry) for entry in page.items],
            next_page_token=page.next_page_token or "",
        )

    async def GetUsage(
        self, request: billing_pb2.GetUsageRequest, context: Context
    ) -> billing_pb2.GetUsageResponse:
        page = await self._ledger.usage(request.user_id, convert.usage_query(request))
        return billing_pb2.GetUsageResponse(
            groups=[convert.usage_group(group) for group in page.items],
            next_page_token=page.next_page_token or "",
        )

    async def ListFreeBlocks(
        self, request: billing_pb2.ListFreeBlocksRequest, context: Context
    ) -> billing_pb2.ListFreeBlocksResponse:
        free = self._ledger.free_blocks(list(request.block_ids)[:MAX_FREE_BLOCK_QUERY])
        return billing_pb2.ListFreeBlocksResponse(block_ids=free)

    async def EstimateCost(
        self, request: billing_pb2.EstimateCostRequest, context: Context
    ) -> billing_pb2.EstimateCostResponse:
        links = [(link.source_id, link.sink_id) for link in request.links]
        user_id = optional_id(request.user_id, "user_id")
        estimate, balance = await self._ledger.estimate(
            convert.estimate_nodes(request), links, user_id
        )
        return convert.estimate_response(estimate, balance)
