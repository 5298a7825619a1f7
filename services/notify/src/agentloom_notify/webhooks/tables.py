"""The webhook tables (schema `notify`): endpoints, their deliveries, and every attempt.

A delivery is one event for one endpoint (UNIQUE(endpoint_id, event_id), so a redelivered
bus message adds nothing) and keeps its `webhook_id` and exact body for every attempt.
"""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA = "notify"
metadata = MetaData(
    schema=SCHEMA,
    naming_convention={
        "pk": "pk_%(table_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "ck": "ck_%(table_name)s_%(constraint_name)s",
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    },
)

PENDING = "pending"
DELIVERED = "delivered"
FAILED = "failed"


class Base(DeclarativeBase):
    metadata = metadata


class Endpoint(Base):
    __tablename__ = "webhook_endpoints"
    __table_args__ = (Index(None, "user_id", "created_at"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[str] = mapped_column(Text)
    url: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, server_default="")
    event_types: Mapped[list[str]] = mapped_column(ARRAY(Text))
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    disabled_reason: Mapped[str | None] = mapped_column(Text)
    # The signing secret, sealed with AES-GCM under key `secret_key_id` (see sealing.py).
    secret_key_id: Mapped[str] = mapped_column(Text)
    secret_sealed: Mapped[bytes] = mapped_column(LargeBinary)
    # Set by the first failed attempt after a success; past `webhook_disable_after_s` of
    # failures the endpoint is disabled. Cleared by any success.
    failing_since: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Delivery(Base):
    __tablename__ = "webhook_deliveries"
    __table_args__ = (
        UniqueConstraint("endpoint_id", "event_id"),
        CheckConstraint("status IN ('pending', 'delivered', 'failed')", name="status_known"),
        Index(None, "endpoint_id", "created_at"),
        # The workers' claim: due pending deliveries, oldest first.
        Index(
            "ix_webhook_deliveries_due",
            "next_attempt_at",
            postgresql_where=text("status = 'pending'"),
        ),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    endpoint_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey(Endpoint.id, ondelete="CASCADE")
    )
    user_id: Mapped[str] = mapped_column(Text)
    event_id: Mapped[str] = mapped_column(Text)
    event_type: Mapped[str] = mapped_column(Text)
    webhook_id: Mapped[str] = mapped_column(Text, unique=True)
    payload: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text, server_default=PENDING)
    # Attempts started so far; a claim increments it, so it also fences a late result.
    attempt_count: Mapped[int] = mapped_column(Integer, server_default="0")
    # False after a manual redelivery: that one attempt is all it gets.
    auto_retry: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    manual_attempt: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    delivered_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # Insertion order, the cursor of the delivery log.
    seq: Mapped[int] = mapped_column(BigInteger, Identity(always=True), unique=True)


class Attempt(Base):
    """One POST of a delivery: what came back, how long it took."""

    __tablename__ = "webhook_attempts"
    __table_args__ = (Index(None, "delivery_id", "attempt"),)

    id: Mapped[int] = mapped_column(BigInteger, Identity(always=True), primary_key=True)
    delivery_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey(Delivery.id, ondelete="CASCADE")
    )
    attempt: Mapped[int] = mapped_column(Integer)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    status_code: Mapped[int | None] = mapped_column(Integer)
    duration_ms: Mapped[int] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(Text)
    manual: Mapped[bool] = mapped_column(Boolean, server_default=text("false"))
