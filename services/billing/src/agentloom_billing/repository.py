"""Ledger storage: async functions over one session, each one statement (or two).

Callers own the transaction; every function here runs inside it. The statements that move
credits lock the account row first (`FOR NO KEY UPDATE`, so foreign-key checks of other
inserts do not wait), then the execution budget if any, and check every guard, append the
ledger row and update the counters in one round trip.
"""

from __future__ import annotations

import json
import uuid
from dataclasses import dataclass
from datetime import date

from sqlalchemy import bindparam, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from agentloom_billing.domain import (
    ChargeRequest,
    CreditRequest,
    RefundRequest,
    TransactionKind,
    initial_grant_key,
)
from agentloom_billing.tables import Account, LedgerEntry


@dataclass(frozen=True)
class StoredEntry:
    """The ledger row an idempotency key already names."""

    transaction_id: uuid.UUID
    user_id: str
    amount: int


@dataclass(frozen=True)
class ChargeState:
    """What the charge statement saw (under the account's lock) and whether it charged."""

    charged_balance: int | None
    balance: int
    spent_today: int
    daily_cap: int | None
    has_budget: bool
    budget_spent: int
    max_credits: int | None


@dataclass(frozen=True)
class RefundState:
    """The charge a refund names (None: no such charge of this user) and the refund row."""

    charged: int | None
    refunded_amount: int | None
    balance_after: int | None


# Built once: every execution's balance check runs it.
BALANCE = select(Account.balance).where(Account.user_id == bindparam("user_id"))


async def get_balance(session: AsyncSession, *, user_id: str) -> int | None:
    """The account's balance, or None when the user has no account yet."""
    balance: int | None = await session.scalar(BALANCE, {"user_id": user_id})
    return balance


async def open_account(session: AsyncSession, *, user_id: str, grant: int) -> bool:
    """Open the account with its starting grant unless it exists; True if it was opened.

    Race-free: of concurrent openers one inserts, the others wait for it and do nothing.
    """
    opened = await session.scalar(
        insert(Account)
        .values(user_id=user_id, balance=grant)
        .on_conflict_do_nothing(index_elements=[Account.user_id])
        .returning(Account.user_id)
    )
    if opened is None:
        return False
    await session.execute(
        insert(LedgerEntry).values(
            id=uuid.uuid4(),
            user_id=user_id,
            kind=TransactionKind.GRANT.value,
            amount=grant,
            balance_after=grant,
            idempotency_key=initial_grant_key(user_id),
        )
    )
    return True


_CHARGE = text(
    """
    WITH account AS MATERIALIZED (
        SELECT user_id, balance,
               CASE WHEN usage_day = CAST(:today AS date) THEN usage_day_spent ELSE 0 END
                   AS spent_today,
               COALESCE(daily_cap, CAST(:default_daily_cap AS bigint)) AS daily_cap
        FROM billing.accounts
        WHERE user_id = CAST(:user_id AS text)
        FOR NO KEY UPDATE
    ),
    budget AS MATERIALIZED (
        -- Joined with `account` so it is locked second, as in every other statement.
        SELECT b.spent, COALESCE(CAST(:max_credits AS bigint), b.max_credits) AS max_credits
        FROM billing.execution_budgets AS b, account
        WHERE b.execution_id = CAST(:execution_id AS text)
        FOR NO KEY UPDATE OF b
    ),
    entry AS (
        INSERT INTO billing.transactions
            (id, user_id, kind, amount, balance_after, idempotency_key,
             graph_id, execution_id, node_id, block_id, usage)
        SELECT CAST(:id AS uuid), account.user_id, 'usage', -CAST(:amount AS bigint),
               account.balance - CAST(:amount AS bigint), CAST(:key AS text),
               CAST(:graph_id AS text), CAST(:execution_id AS text), CAST(:node_id AS text),
               CAST(:block_id AS text), CAST(:usage AS jsonb)
        FROM account LEFT JOIN budget ON true
        WHERE account.balance >= CAST(:amount AS bigint)
          AND (account.daily_cap IS NULL
               OR account.spent_today + CAST(:amount AS bigint) <= account.daily_cap)
          -- A budget given with the charge must be registered first (see create_budget).
          AND (CAST(:max_credits AS bigint) IS NULL OR budget.spent IS NOT NULL)
          AND (budget.max_credits IS NULL
               OR budget.spent + CAST(:amount AS bigint) <= budget.max_credits)
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING balance_after
    ),
    debit AS (
        UPDATE billing.accounts AS a
        SET balance = entry.balance_after,
            usage_day = CAST(:today AS date),
            usage_day_spent = account.spent_today + CAST(:amount AS bigint)
        FROM entry, account
        WHERE a.user_id = account.user_id
    ),
    spend AS (
        UPDATE billing.execution_budgets AS b
        SET spent = b.spent + CAST(:amount AS bigint),
            max_credits = COALESCE(CAST(:max_credits AS bigint), b.max_credits)
        FROM entry
        WHERE b.execution_id = CAST(:execution_id AS text)
    )
    SELECT entry.balance_after AS charged_balance, account.balance, account.spent_today,
           account.daily_cap, budget.spent IS NOT NULL AS has_budget,
           COALESCE(budget.spent, 0) AS budget_spent, budget.max_credits
    FROM account LEFT JOIN budget ON true LEFT JOIN entry ON true
    """
)


async def charge(
    session: AsyncSession,
    *,
    charge: ChargeRequest,
    amount: int,
    transaction_id: uuid.UUID,
    today: date,
    default_daily_cap: int | None,
) -> ChargeState | None:
    """Append the usage row if the key is new and every guard passes; one statement.

    None means the user has no account (yet). Otherwise `charged_balance` is the balance
    after the charge, or None for a replay or a refusal (the caller tells them apart).
    """
    row = (
        await session.execute(
            _CHARGE,
            {
                "id": transaction_id,
                "user_id": charge.user_id,
                "amount": amount,
                "key": charge.idempotency_key,
                "graph_id": charge.graph_id,
                "execution_id": charge.execution_id,
                "node_id": charge.node_id,
                "block_id": charge.block_id,
                "usage": json.dumps(charge.usage.as_json()) if charge.amount is None else None,
                "max_credits": charge.execution_budget,
                "today": today,
                "default_daily_cap": default_daily_cap,
            },
        )
    ).one_or_none()
    if row is None:
        return None
    return ChargeState(
        charged_balance=row.charged_balance,
        balance=row.balance,
        spent_today=row.spent_today,
        daily_cap=row.daily_cap,
        has_budget=row.has_budget,
        budget_spent=row.budget_spent,
        max_credits=row.max_credits,
    )


async def create_budget(
    session: AsyncSession, *, execution_id: str, user_id: str, max_credits: int
) -> None:
    """Register an execution's cap, its spend so far taken from the ledger; waits for (and
    leaves alone) a concurrent registration."""
    await session.execute(
        text(
            """
            INSERT INTO billing.execution_budgets (execution_id, user_id, max_credits, spent)
            SELECT CAST(:execution_id AS text), CAST(:user_id AS text),
                   CAST(:max_credits AS bigint), COALESCE(-SUM(amount), 0)
            FROM billing.transactions
            WHERE execution_id = CAST(:execution_id AS text)
              AND kind IN ('usage', 'refund')
            ON CONFLICT (execution_id) DO NOTHING
            """
        ),
        {"execution_id": execution_id, "user_id": user_id, "max_credits": max_credits},
    )


_REFUND = text(
    """
    WITH charge AS (
        SELECT user_id, -amount AS charged, graph_id, execution_id, node_id, block_id,
               CAST(timezone('UTC', created_at) AS date) AS day
        FROM billing.transactions
        WHERE idempotency_key = CAST(:charge_key AS text) AND kind = 'usage'
          AND user_id = CAST(:user_id AS text)
    ),
    account AS MATERIALIZED (
        SELECT a.user_id, a.balance
        FROM billing.accounts AS a JOIN charge USING (user_id)
        FOR NO KEY UPDATE OF a
    ),
    entry AS (
        INSERT INTO billing.transactions
            (id, user_id, kind, amount, balance_after, idempotency_key,
             graph_id, execution_id, node_id, block_id, description)
        SELECT CAST(:id AS uuid), account.user_id, 'refund',
               COALESCE(CAST(:amount AS bigint), charge.charged),
               account.balance + COALESCE(CAST(:amount AS bigint), charge.charged),
               CAST(:key AS text), charge.graph_id, charge.execution_id, charge.node_id,
               charge.block_id, CAST(:reason AS text)
        FROM charge JOIN account USING (user_id)
        WHERE COALESCE(CAST(:amount AS bigint), charge.charged) <= charge.charged
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING amount, balance_after
    ),
    credit AS (
        UPDATE billing.accounts AS a
        SET balance = entry.balance_after,
            usage_day_spent = CASE WHEN a.usage_day = charge.day
                                   THEN GREATEST(a.usage_day_spent - entry.amount, 0)
                                   ELSE a.usage_day_spent END
        FROM entry, charge
        WHERE a.user_id = charge.user_id
    ),
    unspend AS (
        UPDATE billing.execution_budgets AS b
        SET spent = b.spent - entry.amount
        FROM entry, charge
        WHERE b.execution_id = charge.execution_id
    )
    SELECT charge.charged, entry.amount AS refunded_amount, entry.balance_after
    FROM charge LEFT JOIN entry ON true
    """
)


async def refund(
    session: AsyncSession, *, refund: RefundRequest, transaction_id: uuid.UUID
) -> RefundState:
    """Append the refund row if the charge exists, is this user's, covers the amount and
    was not refunded yet; one statement."""
    row = (
        await session.execute(
            _REFUND,
            {
                "id": transaction_id,
                "user_id": refund.user_id,
                "charge_key": refund.node_execution_id,
                "key": refund.key,
                "amount": refund.amount,
                "reason": refund.reason,
            },
        )
    ).one_or_none()
    if row is None:
        return RefundState(charged=None, refunded_amount=None, balance_after=None)
    return RefundState(
        charged=row.charged, refunded_amount=row.refunded_amount, balance_after=row.balance_after
    )


_CREDIT = text(
    """
    WITH account AS MATERIALIZED (
        SELECT user_id, balance FROM billing.accounts
        WHERE user_id = CAST(:user_id AS text)
        FOR NO KEY UPDATE
    ),
    entry AS (
        INSERT INTO billing.transactions
            (id, user_id, kind, amount, balance_after, idempotency_key, description)
        SELECT CAST(:id AS uuid), user_id, CAST(:kind AS text), CAST(:amount AS bigint),
               balance + CAST(:amount AS bigint), CAST(:key AS text), CAST(:description AS text)
        FROM account
        WHERE balance + CAST(:amount AS bigint) >= 0
        ON CONFLICT (idempotency_key) DO NOTHING
        RETURNING balance_after
    ),
    credit AS (
        UPDATE billing.accounts AS a SET balance = entry.balance_after
        FROM entry WHERE a.user_id = CAST(:user_id AS text)
    )
    SELECT account.balance, entry.balance_after FROM account LEFT JOIN entry ON true
    """
)


async def credit(
    session: AsyncSession, *, credit: CreditRequest, transaction_id: uuid.UUID
) -> tuple[int, int | None] | None:
    """Append an admin movement unless its key exists or it would overdraw; one statement.

    None: no account. Else (balance before, balance after or None when nothing was added).
    """
    row = (
        await session.execute(
            _CREDIT,
            {
                "id": transaction_id,
                "user_id": credit.user_id,
                "kind": credit.kind.value,
                "amount": credit.amount,
                "key": credit.key,
                "description": credit.description,
            },
        )
    ).one_or_none()
    return None if row is None else (row.balance, row.balance_after)


async def set_daily_cap(
    session: AsyncSession, *, user_id: str, daily_cap: int | None, today: date
) -> tuple[int | None, int]:
    """Set (None: clear) the user's own daily cap; (their own cap, spent today)."""
    row = (
        await session.execute(
            text(
                """
                UPDATE billing.accounts SET daily_cap = CAST(:daily_cap AS bigint)
                WHERE user_id = CAST(:user_id AS text)
                RETURNING daily_cap,
                    CASE WHEN usage_day = CAST(:today AS date) THEN usage_day_spent ELSE 0 END
                        AS spent_today
                """
            ),
            {"user_id": user_id, "daily_cap": daily_cap, "today": today},
        )
    ).one()
    return row.daily_cap, row.spent_today


async def find_entry(session: AsyncSession, *, idempotency_key: str) -> StoredEntry | None:
    """The ledger row already recorded under this key, if any."""
    row = (
        await session.execute(
            select(LedgerEntry.id, LedgerEntry.user_id, LedgerEntry.amount).where(
                LedgerEntry.idempotency_key == idempotency_key
            )
        )
    ).one_or_none()
    if row is None:
        return None
    return StoredEntry(transaction_id=row.id, user_id=row.user_id, amount=row.amount)
