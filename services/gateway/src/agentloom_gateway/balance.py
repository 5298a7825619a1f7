"""The balance check before an execution starts, remembered briefly while it says yes.

Every `POST .../execute` (and every trigger delivery) asks billing whether the user has
credit left: a gRPC call and a database read per execution, 2-2.5 ms of CPU across the
gateway and billing under bench W2 and W4 (one user starting executions in a burst). A
"sufficient" answer is kept for `cache_s` per user when the balance was at least
`min_balance`; a balance close to empty, or used up, is asked about every time, so a user
running out gets the 402 at once and a top-up counts at once. Only the start gate is
skipped: every charge is still checked against the balance when a node runs (a charge the
balance does not cover fails the node), so no credit is spent that is not there.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from agentloom.billing.v1 import billing_pb2, billing_pb2_grpc

# Users remembered at most; past this the memory starts over (answers are only a shortcut).
MAX_USERS = 10_000


class BalanceGate:
    def __init__(
        self,
        billing: billing_pb2_grpc.BillingServiceAsyncStub,
        *,
        cache_s: float,
        min_balance: int,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._billing = billing
        self._cache_s = cache_s
        self._min_balance = min_balance
        self._clock = clock
        self._sufficient: dict[str, tuple[float, billing_pb2.CheckBalanceResponse]] = {}

    async def check(self, user_id: str) -> billing_pb2.CheckBalanceResponse:
        """Billing's answer for "has `user_id` any credit left", or a yes given in the last
        `cache_s` seconds for a balance of at least `min_balance`."""
        remembered = self._sufficient.get(user_id)
        if remembered is not None and remembered[0] > self._clock():
            return remembered[1]
        reply: billing_pb2.CheckBalanceResponse = await self._billing.CheckBalance(
            billing_pb2.CheckBalanceRequest(user_id=user_id, amount=0)
        )
        if reply.sufficient and reply.balance >= self._min_balance and self._cache_s > 0:
            if len(self._sufficient) >= MAX_USERS:
                self._sufficient.clear()
            self._sufficient[user_id] = (self._clock() + self._cache_s, reply)
        else:
            self._sufficient.pop(user_id, None)
        return reply
