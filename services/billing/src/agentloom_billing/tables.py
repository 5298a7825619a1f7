"""The billing tables (schema `billing`): accounts and their append-only ledger.

Invariant: an account's balance equals the sum of its ledger rows' amounts.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    MetaData,
    Text,
    func,
)
from sqlalchemy.dialects.postgresql import UUID
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
    __table_args__ = (CheckConstraint("balance >= 0", name="balance_not_negative"),)

    user_id: Mapped[str] = mapped_column(Text, primary_key=True)
    balance: Mapped[int] = mapped_column(BigInteger)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


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
