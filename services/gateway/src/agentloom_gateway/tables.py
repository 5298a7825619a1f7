"""The identity schema: users, their API keys and their integration credentials (SQLAlchemy 2
typed tables)."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import (
    ARRAY,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA = "identity"


class Base(DeclarativeBase):
    metadata = MetaData(schema=SCHEMA)


class User(Base):
    __tablename__ = "users"
    __table_args__ = (CheckConstraint("role IN ('user', 'admin')", name="users_role_check"),)

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    # Stored lower-cased, so the unique constraint is case-insensitive. None for users
    # created on first use from a JWT without an (unused) email claim.
    email: Mapped[str | None] = mapped_column(Text, unique=True)
    # The JWT `sub` that names this user (its own id for users made by an admin or the CLI).
    subject: Mapped[str] = mapped_column(Text, unique=True)
    name: Mapped[str] = mapped_column(Text)
    role: Mapped[str] = mapped_column(Text, server_default="user")
    timezone: Mapped[str] = mapped_column(Text, server_default="UTC")
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    suspended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class ApiKey(Base):
    __tablename__ = "api_keys"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    # The random public part of the key: one indexed lookup per request.
    public_id: Mapped[str] = mapped_column(Text, unique=True)
    # HMAC-SHA256(pepper, secret): the secret itself is never stored.
    secret_hmac: Mapped[bytes] = mapped_column(LargeBinary)
    name: Mapped[str] = mapped_column(Text)
    scopes: Mapped[list[str]] = mapped_column(ARRAY(Text), server_default=text("'{}'"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    last_used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    suspended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class Credential(Base):
    """One integration credential. The secret fields are one JSON document sealed with
    AES-256-GCM under a per-credential data key, itself wrapped by key-encryption key `kek_id`;
    both bind (owner, id) as associated data. `attributes` holds only non-secret fields."""

    __tablename__ = "credentials"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    provider: Mapped[str] = mapped_column(Text)
    kind: Mapped[str] = mapped_column(Text)
    title: Mapped[str] = mapped_column(Text)
    attributes: Mapped[dict[str, object]] = mapped_column(JSONB, server_default=text("'{}'"))
    kek_id: Mapped[str] = mapped_column(Text, index=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    # Format of the sealed fields, so a later scheme can be told apart.
    scheme: Mapped[int] = mapped_column(SmallInteger, server_default=text("1"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class Trigger(Base):
    """An incoming trigger: a URL that starts one graph of its owner's when called with a
    Standard Webhooks signature made with its secret. The secret is sealed like a
    credential's (`vault.KeyRing`, bound to owner and trigger id)."""

    __tablename__ = "triggers"

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    user_id: Mapped[uuid.UUID] = mapped_column(
        UUID, ForeignKey("users.id", ondelete="CASCADE"), index=True
    )
    graph_id: Mapped[uuid.UUID] = mapped_column(UUID, index=True)
    # 0: whichever version is active when the trigger fires.
    graph_version: Mapped[int] = mapped_column(Integer, server_default=text("0"))
    preset_id: Mapped[uuid.UUID | None] = mapped_column(UUID)
    input_name: Mapped[str] = mapped_column(Text)
    description: Mapped[str] = mapped_column(Text, server_default="")
    enabled: Mapped[bool] = mapped_column(Boolean, server_default=text("true"))
    kek_id: Mapped[str] = mapped_column(Text, index=True)
    wrapped_key: Mapped[bytes] = mapped_column(LargeBinary)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())


class TriggerDelivery(Base):
    """One accepted call of a trigger, by its `webhook-id`: a sender's retry of the same
    delivery finds this row and starts nothing new."""

    __tablename__ = "trigger_deliveries"
    __table_args__ = (
        UniqueConstraint("trigger_id", "delivery_id", name="trigger_deliveries_delivery_key"),
    )

    id: Mapped[uuid.UUID] = mapped_column(UUID, primary_key=True, default=uuid.uuid4)
    trigger_id: Mapped[uuid.UUID] = mapped_column(
        UUID, ForeignKey("triggers.id", ondelete="CASCADE")
    )
    delivery_id: Mapped[str] = mapped_column(Text)
    payload: Mapped[object] = mapped_column(JSONB)
    # Set once the execution exists; empty after a crash between storing and starting, which
    # the sender's retry completes (the execution's idempotency key makes that safe).
    execution_id: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now()
    )


metadata = Base.metadata
