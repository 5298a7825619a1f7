"""Billing operations: each validates its input and runs in one database transaction.

The servicer calls these; they combine the repository's statements under the domain rules.
`check_conservation` (from `audit`) is the invariant check other tests call.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, date, datetime

from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentloom_billing import history, repository
from agentloom_billing.audit import ConservationProblem, check_conservation
from agentloom_billing.costs import CostTable
from agentloom_billing.domain import (
    BalanceCheck,
    ChargeOutcome,
    ChargeRequest,
    CreditOutcome,
    CreditRequest,
    RefundOutcome,
    RefundRequest,
    is_sufficient,
    require_id,
    validate_amount,
    validate_daily_cap,
)
from agentloom_billing.errors import (
    BudgetExceeded,
    DailyCapExceeded,
    DatabaseUnavailable,
    IdempotencyKeyReused,
    InsufficientCredits,
    NotCharged,
    RefundExceedsCharge,
)
from agentloom_billing.estimate import GraphEstimate, NodeSpec, estimate_graph
from agentloom_common.db import autocommit_sessions
from agentloom_common.errors import ServiceError

__all__ = ["ConservationProblem", "Ledger", "check_conservation"]

log = logging.getLogger(__name__)


def utc_today() -> date:
    return datetime.now(UTC).date()


class Ledger:
    """The credit ledger of every user. A user's first call opens their account."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        *,
        starting_grant: int,
        costs: CostTable,
        daily_cap: int | None = None,
        today: Callable[[], date] = utc_today,
    ) -> None:
        self._sessions = sessions
        # A balance read is one statement: no transaction round trips around it.
        self._reads = autocommit_sessions(sessions)
        self._starting_grant = starting_grant
        self._costs = costs
        self._daily_cap = daily_cap
        self._today = today

    async def balance(self, user_id: str) -> int:
        """The user's balance."""
        user_id = require_id(user_id, "user_id")
        balance = await self._read_balance(user_id)
        if balance is not None:
            return balance
        async with self._transaction() as session:
            return await self._balance(session, user_id)

    async def check(self, user_id: str, amount: int) -> BalanceCheck:
        """Whether the balance covers `amount` (for 0: whether any credit is left)."""
        amount = validate_amount(amount)
        balance = await self.balance(user_id)
        return BalanceCheck(sufficient=is_sufficient(balance, amount), balance=balance)

    def free_blocks(self, block_ids: list[str]) -> list[str]:
        """The blocks among `block_ids` whose runs without LLM tokens cost nothing."""
        return [b for b in block_ids if self._costs.free_without_tokens(b)]

    async def charge(self, charge: ChargeRequest) -> ChargeOutcome:
        """Charge once per idempotency key; a repeated key returns the first charge's row.

        Without an amount the cost table prices the usage; a price of 0 writes nothing.
        Raises (and records nothing) when the balance, the execution's budget or the daily
        cap does not cover the amount.
        """
        amount = charge.amount
        if amount is None:
            amount = self._costs.price(charge.block_id, charge.usage)
            if amount == 0:
                return ChargeOutcome(None, await self.balance(charge.user_id), False, 0)
        async with self._transaction() as session:
            result = await self._charge(session, charge, amount)
        # Raised after the commit: a refusal writes nothing, but a new account stays.
        if isinstance(result, ServiceError):
            raise result
        return result

    async def _charge(
        self, session: AsyncSession, charge: ChargeRequest, amount: int
    ) -> ChargeOutcome | ServiceError:
        transaction_id = uuid.uuid4()
        # At most: open the account, register the budget, then the charge that settles.
        for _ in range(3):
            state = await repository.charge(
                session,
                charge=charge,
                amount=amount,
                transaction_id=transaction_id,
                today=self._today(),
                default_daily_cap=self._daily_cap,
            )
            if state is None:
                # Returns once the account is committed, by us or by a concurrent opener.
                await repository.open_account(
                    session, user_id=charge.user_id, grant=self._starting_grant
                )
                continue
            if state.charged_balance is not None:
                return ChargeOutcome(transaction_id, state.charged_balance, True, amount)
            if charge.execution_budget is not None and not state.has_budget:
                assert charge.execution_id is not None  # ChargeRequest.parse checks it
                await repository.create_budget(
                    session,
                    execution_id=charge.execution_id,
                    user_id=charge.user_id,
                    max_credits=charge.execution_budget,
                )
                continue
            stored = await repository.find_entry(session, idempotency_key=charge.idempotency_key)
            if stored is not None:
                return self._replay(charge, stored, amount, state.balance)
            return _refusal(state, amount)
        raise RuntimeError("a charge did not settle after opening its account and budget")

    def _replay(
        self, charge: ChargeRequest, stored: repository.StoredEntry, amount: int, balance: int
    ) -> ChargeOutcome | ServiceError:
        if stored.user_id != charge.user_id:
            # Answer without the other user's balance or transaction id.
            return IdempotencyKeyReused(
                "idempotency_key was already used by another user",
                metadata={"field": "idempotency_key"},
            )
        if -stored.amount != amount:
            log.warning(
                "charge replayed with a different amount",
                extra={"fields": {"charged": -stored.amount, "requested": amount}},
            )
        return ChargeOutcome(stored.transaction_id, balance, False, -stored.amount)

    async def refund(self, refund: RefundRequest) -> RefundOutcome:
        """Give back (part of) a node execution's charge, at most once."""
        transaction_id = uuid.uuid4()
        async with self._transaction() as session:
            state = await repository.refund(session, refund=refund, transaction_id=transaction_id)
            if state.charged is None:
                raise NotCharged(
                    "no charge of this user for that node execution",
                    metadata={"field": "node_execution_id"},
                )
            if state.refunded_amount is not None and state.balance_after is not None:
                return RefundOutcome(
                    transaction_id, state.refunded_amount, state.balance_after, True
                )
            stored = await repository.find_entry(session, idempotency_key=refund.key)
            if stored is None:
                raise RefundExceedsCharge(
                    charged=state.charged, requested=refund.amount or state.charged
                )
            balance = await self._balance(session, refund.user_id)
            return RefundOutcome(stored.transaction_id, stored.amount, balance, False)

    async def credit(self, credit: CreditRequest) -> CreditOutcome:
        """An admin grant, top-up or adjustment, applied once per key."""
        transaction_id = uuid.uuid4()
        async with self._transaction() as session:
            result = await repository.credit(session, credit=credit, transaction_id=transaction_id)
            if result is None:
                await repository.open_account(
                    session, user_id=credit.user_id, grant=self._starting_grant
                )
                result = await repository.credit(
                    session, credit=credit, transaction_id=transaction_id
                )
            if result is None:
                raise RuntimeError(f"account {credit.user_id!r} is missing right after opening")
            before, after = result
            if after is not None:
                return CreditOutcome(transaction_id, after, True)
            stored = await repository.find_entry(session, idempotency_key=credit.key)
        if stored is None:
            raise InsufficientCredits(balance=before, required=-credit.amount)
        if stored.user_id != credit.user_id or stored.amount != credit.amount:
            raise IdempotencyKeyReused(
                "idempotency_key was already used for another movement",
                metadata={"field": "idempotency_key"},
            )
        return CreditOutcome(stored.transaction_id, before, False)

    async def set_daily_cap(self, user_id: str, daily_cap: int | None) -> tuple[int | None, int]:
        """Set the user's own daily cap (None: the default); (cap in force, spent today)."""
        user_id = require_id(user_id, "user_id")
        daily_cap = validate_daily_cap(daily_cap)
        async with self._transaction() as session:
            await self._balance(session, user_id)
            own, spent = await repository.set_daily_cap(
                session, user_id=user_id, daily_cap=daily_cap, today=self._today()
            )
        return (own if own is not None else self._daily_cap), spent

    async def transactions(
        self, user_id: str, query: history.TransactionQuery
    ) -> history.Page[history.Transaction]:
        """A page of the user's transactions, newest first (a new user's: their grant)."""
        user_id = require_id(user_id, "user_id")
        async with self._transaction() as session:
            await self._balance(session, user_id)
            return await history.list_transactions(session, user_id=user_id, query=query)

    async def usage(
        self, user_id: str, query: history.UsageQuery
    ) -> history.Page[history.UsageGroup]:
        """A page of the user's usage per graph or per execution."""
        user_id = require_id(user_id, "user_id")
        async with self._transaction() as session:
            return await history.usage(session, user_id=user_id, query=query)

    async def estimate(
        self, nodes: Sequence[NodeSpec], links: Sequence[tuple[str, str]], user_id: str | None
    ) -> tuple[GraphEstimate, int | None]:
        """The graph's estimate and, when a user is named, their balance."""
        estimate = estimate_graph(self._costs, nodes, links)
        balance = await self.balance(user_id) if user_id else None
        return estimate, balance

    async def _balance(self, session: AsyncSession, user_id: str) -> int:
        """The balance, opening the account (with its grant) if the user has none."""
        balance = await repository.get_balance(session, user_id=user_id)
        if balance is None:
            await repository.open_account(session, user_id=user_id, grant=self._starting_grant)
            balance = await repository.get_balance(session, user_id=user_id)
        if balance is None:
            raise RuntimeError(f"account {user_id!r} is missing right after it was opened")
        return balance

    async def _read_balance(self, user_id: str) -> int | None:
        """The balance read outside a transaction; None when the account does not exist
        yet: the caller opens it in a transaction."""
        async with _unavailable_on_outage(), self._reads() as session:
            return await repository.get_balance(session, user_id=user_id)

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        """One transaction; losing the database becomes UNAVAILABLE (retryable)."""
        async with _unavailable_on_outage(), self._sessions.begin() as session:
            yield session


@asynccontextmanager
async def _unavailable_on_outage() -> AsyncIterator[None]:
    """Losing the database becomes UNAVAILABLE (retryable)."""
    try:
        yield
    except Exception as error:
        if _is_connection_failure(error):
            raise DatabaseUnavailable("the billing database is unavailable") from error
        raise


def _refusal(state: repository.ChargeState, amount: int) -> ServiceError:
    """Why the guarded statement charged nothing: the execution's budget, the daily cap,
    else the balance."""
    if state.max_credits is not None and state.budget_spent + amount > state.max_credits:
        return BudgetExceeded(
            max_credits=state.max_credits, spent=state.budget_spent, required=amount
        )
    if state.daily_cap is not None and state.spent_today + amount > state.daily_cap:
        return DailyCapExceeded(
            daily_cap=state.daily_cap, spent_today=state.spent_today, required=amount
        )
    return InsufficientCredits(balance=state.balance, required=amount)


# SQLSTATEs of a server that cannot take the work now: connection exceptions (08...), too
# many connections, shutting down or starting up.
_UNAVAILABLE_STATES = ("08", "53300", "57P01", "57P02", "57P03")


def _is_connection_failure(error: Exception) -> bool:
    if isinstance(error, exc.DBAPIError):
        if error.connection_invalidated:
            return True
        sqlstate = getattr(error.orig, "sqlstate", None) or ""
        if sqlstate.startswith(_UNAVAILABLE_STATES):
            return True
    # OSError: refused or reset connections and timeouts; exc.TimeoutError: no pooled
    # connection came free; InterfaceError: the connection closed under a statement.
    return isinstance(error, OSError | exc.TimeoutError | exc.InterfaceError | exc.OperationalError)
