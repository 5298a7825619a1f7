"""The billing tables (schema `billing`): accounts, their append-only ledger, and the
spend of executions that have a credit cap.

Invariant: an account's balance equals the sum of its ledger rows' amounts, and each row's
balance_after is the balance before it plus its amount (in `seq` order).
"""

from __future__ import annotations

import uuid
from datetime import date, datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    Date,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    MetaData,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA = "billing"
metadata = MetaData(
    schema=SCHEMA,
    naming_convention={
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    },
)


class Base(DeclarativeBase):
    metadata = metadata


class Account(Base):
    __tablename__ = "accounts"
    __table_args__ = (
        CheckConstraint("balance >= 0", name="balance_not_negative"),
        CheckConstraint("daily_cap >= 0", name="daily_cap_not_negative"),
    )

    user_id: Mapped[str] = mapped_column(Text, primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # The user's own daily cap (None: the service default), and what was charged on
    # `usage_day` (UTC), net of refunds: both updated by the charge that holds the row.
    daily_cap: Mapped[int | None] = mapped_column(BigInteger)
    usage_day: Mapped[date | None] = mapped_column(Date)
    usage_day_spent: Mapped[int] = mapped_column(BigInteger, server_default="0")


class LedgerEntry(Base):
    """One row of the `transactions` ledger: never updated or deleted (a trigger refuses)."""

    __tablename__ = "transactions"
    __table_args__ = (
        CheckConstraint(
            "kind IN ('grant', 'usage', 'refund', 'top_up', 'adjustment')", name="kind_known"
        ),
        CheckConstraint(
            "(kind = 'usage' AND amount <= 0)"
            " OR (kind IN ('grant', 'refund', 'top_up') AND amount >= 0)"
            " OR kind = 'adjustment'",
            name="amount_sign",
        ),
        CheckConstraint("balance_after >= 0", name="balance_after_not_negative"),
        Index(None, "user_id", "created_at"),
        Index(None, "execution_id"),
        Index(None, "user_id", "seq"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[str] = mapped_column(Text, ForeignKey(Account.user_id))
    kind: Mapped[str] = mapped_column(Text)
    # Signed: usage is negative, grants and refunds positive.
    amount: Mapped[int] = mapped_column(BigInteger)
    balance_after: Mapped[int] = mapped_column(BigInteger)
    # Usage rows: the node execution id. Rows the service writes: `<kind>:...`.
    idempotency_key: Mapped[str] = mapped_column(Text, unique=True)
    graph_id: Mapped[str | None] = mapped_column(Text)
    execution_id: Mapped[str | None] = mapped_column(Text)
    node_id: Mapped[str | None] = mapped_column(Text)
    block_id: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    # Insertion order: a user's rows are written under their account's row lock, so within a
    # user it is the order of the running balance (and the history's cursor).
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True))
    # Admin movements and refunds: why. Priced usage rows: the usage that was priced.
    description: Mapped[str | None] = mapped_column(Text)
    usage: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class ExecutionBudget(Base):
    """An execution's credit cap and what it has spent (net of refunds) so far."""

    __tablename__ = "execution_budgets"
    __table_args__ = (CheckConstraint("spent >= 0", name="spent_not_negative"),)

    execution_id: Mapped[str] = mapped_column(Text, primary_key=True)
    user_id: Mapped[str] = mapped_column(Text, ForeignKey(Account.user_id))
    max_credits: Mapped[int] = mapped_column(BigInteger)
    spent: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
