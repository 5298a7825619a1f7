"""Ledger storage: async functions over one session, each a statement or two.

Callers own the transaction; every function here runs inside it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy import BigInteger, Text, literal, select, update
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.ext.asyncio import AsyncSession

from agentloom_billing.domain import ChargeRequest, TransactionKind, initial_grant_key
from agentloom_billing.tables import Account, LedgerEntry


@dataclass(frozen=True)
class StoredCharge:
    """The ledger row an idempotency key already names."""

    transaction_id: uuid.UUID
    user_id: str
    amount: int


async def get_balance(session: AsyncSession, *, user_id: str) -> int | None:
    """The account's balance, or None when the user has no account yet."""
    return await session.scalar(select(Account.balance).where(Account.user_id == user_id))


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


async def record_usage(
    session: AsyncSession, *, charge: ChargeRequest, transaction_id: uuid.UUID
) -> int | None:
    """Append the usage row if the key is new and the balance covers it; return balance_after.

    One statement locks the account row (so balance_after is exact and charges of one user
    queue up), and `ON CONFLICT DO NOTHING` makes a repeated key insert nothing. None means
    a replay, an insufficient balance, or no account: the caller tells them apart.
    """
    source = (
        select(
            literal(transaction_id, UUID(as_uuid=True)),
            Account.user_id,
            literal(TransactionKind.USAGE.value, Text),
            literal(-charge.amount, BigInteger),
            Account.balance - charge.amount,
            literal(charge.idempotency_key, Text),
            literal(charge.graph_id, Text),
            literal(charge.execution_id, Text),
            literal(charge.node_id, Text),
            literal(charge.block_id, Text),
        )
        .where(Account.user_id == charge.user_id, Account.balance >= charge.amount)
        .with_for_update(key_share=True)
    )
    columns = [
        "id",
        "user_id",
        "kind",
        "amount",
        "balance_after",
        "idempotency_key",
        "graph_id",
        "execution_id",
        "node_id",
        "block_id",
    ]
    return await session.scalar(
        insert(LedgerEntry)
        .from_select(columns, source)
        .on_conflict_do_nothing(index_elements=[LedgerEntry.idempotency_key])
        .returning(LedgerEntry.balance_after)
    )


async def debit(session: AsyncSession, *, user_id: str, amount: int) -> int | None:
    """Take `amount` off the balance if it covers it; the new balance, or None if not."""
    return await session.scalar(
        update(Account)
        .where(Account.user_id == user_id, Account.balance >= amount)
        .values(balance=Account.balance - amount)
        .returning(Account.balance)
        .execution_options(synchronize_session=False)
    )


async def find_charge(session: AsyncSession, *, idempotency_key: str) -> StoredCharge | None:
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
    return StoredCharge(transaction_id=row.id, user_id=row.user_id, amount=row.amount)
