"""Billing operations: each validates its input and runs in one database transaction.

The servicer calls these; they combine the repository's statements under the domain rules.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from sqlalchemy import exc
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentloom_billing import repository
from agentloom_billing.domain import (
    BalanceCheck,
    ChargeOutcome,
    ChargeRequest,
    Shortfall,
    is_sufficient,
    require_id,
    validate_amount,
)
from agentloom_billing.errors import DatabaseUnavailable, IdempotencyKeyReused, InsufficientCredits

log = logging.getLogger(__name__)


class Ledger:
    """The credit ledger of every user. A user's first call opens their account."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], *, starting_grant: int) -> None:
        self._sessions = sessions
        self._starting_grant = starting_grant

    async def balance(self, user_id: str) -> int:
        """The user's balance."""
        user_id = require_id(user_id, "user_id")
        async with self._transaction() as session:
            return await self._balance(session, user_id)

    async def check(self, user_id: str, amount: int) -> BalanceCheck:
        """Whether the balance covers `amount` (for 0: whether any credit is left)."""
        user_id = require_id(user_id, "user_id")
        amount = validate_amount(amount)
        async with self._transaction() as session:
            balance = await self._balance(session, user_id)
        return BalanceCheck(sufficient=is_sufficient(balance, amount), balance=balance)

    async def charge(self, charge: ChargeRequest) -> ChargeOutcome:
        """Charge once per idempotency key; a repeated key returns the first charge's row.

        Raises InsufficientCredits (and records nothing) when the balance is below the amount.
        """
        async with self._transaction() as session:
            result = await self._charge(session, charge)
        # Raised after the commit: a refusal writes nothing, but a new user's account stays.
        if isinstance(result, Shortfall):
            raise InsufficientCredits(balance=result.balance, required=result.required)
        return result

    async def _charge(
        self, session: AsyncSession, charge: ChargeRequest
    ) -> ChargeOutcome | Shortfall:
        transaction_id = uuid.uuid4()
        recorded = await self._record_usage(session, charge, transaction_id)
        if recorded is None:
            stored = await repository.find_charge(session, idempotency_key=charge.idempotency_key)
            if stored is not None:
                return await self._replay(session, charge, stored)
            return Shortfall(
                balance=await self._balance(session, charge.user_id), required=charge.amount
            )
        balance = await repository.debit(session, user_id=charge.user_id, amount=charge.amount)
        if balance is None:
            # record_usage holds the account row, so this cannot happen; if it ever does, the
            # exception rolls the usage row back rather than leave the ledger unbalanced.
            current = await self._balance(session, charge.user_id)
            raise InsufficientCredits(balance=current, required=charge.amount)
        return ChargeOutcome(transaction_id=transaction_id, balance=balance, charged=True)

    async def _record_usage(
        self, session: AsyncSession, charge: ChargeRequest, transaction_id: uuid.UUID
    ) -> int | None:
        """The usage row's balance_after, or None for a replay or a shortfall.

        Nothing recorded may also mean the statement began before the account existed (a
        new user, maybe opened by a concurrent call): make sure it exists, then try again.
        """
        recorded = await repository.record_usage(
            session, charge=charge, transaction_id=transaction_id
        )
        if recorded is not None:
            return recorded
        # Returns once the account is committed, by us or by a concurrent opener.
        await repository.open_account(session, user_id=charge.user_id, grant=self._starting_grant)
        return await repository.record_usage(session, charge=charge, transaction_id=transaction_id)

    async def _replay(
        self, session: AsyncSession, charge: ChargeRequest, stored: repository.StoredCharge
    ) -> ChargeOutcome:
        if stored.user_id != charge.user_id:
            # Answer without the other user's balance or transaction id.
            raise IdempotencyKeyReused(
                "idempotency_key was already used by another user",
                metadata={"field": "idempotency_key"},
            )
        if -stored.amount != charge.amount:
            log.warning(
                "charge replayed with a different amount",
                extra={"fields": {"charged": -stored.amount, "requested": charge.amount}},
            )
        balance = await self._balance(session, charge.user_id)
        return ChargeOutcome(transaction_id=stored.transaction_id, balance=balance, charged=False)

    async def _balance(self, session: AsyncSession, user_id: str) -> int:
        """The balance, opening the account (with its grant) if the user has none."""
        balance = await repository.get_balance(session, user_id=user_id)
        if balance is None:
            await repository.open_account(session, user_id=user_id, grant=self._starting_grant)
            balance = await repository.get_balance(session, user_id=user_id)
        if balance is None:
            raise RuntimeError(f"account {user_id!r} is missing right after it was opened")
        return balance

    @asynccontextmanager
    async def _transaction(self) -> AsyncIterator[AsyncSession]:
        """One transaction; losing the database becomes UNAVAILABLE (retryable)."""
        try:
            async with self._sessions.begin() as session:
                yield session
        except Exception as error:
            if _is_connection_failure(error):
                raise DatabaseUnavailable("the billing database is unavailable") from error
            raise


def _is_connection_failure(error: Exception) -> bool:
    if isinstance(error, exc.DBAPIError) and error.connection_invalidated:
        return True
    # OSError: refused or reset connections and timeouts; exc.TimeoutError: no pooled
    # connection came free; InterfaceError: the connection closed under a statement.
    return isinstance(error, OSError | exc.TimeoutError | exc.InterfaceError | exc.OperationalError)
