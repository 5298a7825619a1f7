"""gRPC translation for billing: proto in, ledger call, proto out."""

from __future__ import annotations

import grpc

from agentloom.billing.v1 import billing_pb2, billing_pb2_grpc
from agentloom_billing.domain import ChargeRequest
from agentloom_billing.ledger import Ledger


class BillingServicer(billing_pb2_grpc.BillingServiceServicer):
    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger

    async def GetBalance(
        self, request: billing_pb2.GetBalanceRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.GetBalanceResponse:
        return billing_pb2.GetBalanceResponse(balance=await self._ledger.balance(request.user_id))

    async def CheckBalance(
        self, request: billing_pb2.CheckBalanceRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.CheckBalanceResponse:
        check = await self._ledger.check(request.user_id, request.amount)
        return billing_pb2.CheckBalanceResponse(sufficient=check.sufficient, balance=check.balance)

    async def Charge(
        self, request: billing_pb2.ChargeRequest, context: grpc.aio.ServicerContext
    ) -> billing_pb2.ChargeResponse:
        charge = ChargeRequest.parse(
            user_id=request.user_id,
            idempotency_key=request.idempotency_key,
            amount=request.amount,
            graph_id=request.graph_id,
            execution_id=request.execution_id,
            node_id=request.node_id,
            block_id=request.block_id,
        )
        outcome = await self._ledger.charge(charge)
        return billing_pb2.ChargeResponse(
            transaction_id=str(outcome.transaction_id),
            balance=outcome.balance,
            charged=outcome.charged,
        )
