"""The executor's tables (schema `executor`): executions, node executions, outbox."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Identity,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    Text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

SCHEMA = "executor"
metadata = MetaData(schema=SCHEMA)


class Base(DeclarativeBase):
    metadata = metadata


class Execution(Base):
    __tablename__ = "executions"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[str] = mapped_column(Text)
    graph_id: Mapped[str] = mapped_column(Text)
    graph_version: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(Text)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSONB)
    credentials_inputs: Mapped[dict[str, Any]] = mapped_column(JSONB)
    outputs: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # The graph version as it was when the execution was created: nodes and links.
    # Not loaded with the row (`GraphCache.get` reads it when it needs it); touching it
    # unloaded raises rather than doing I/O behind the caller's back.
    graph: Mapped[dict[str, Any]] = mapped_column(JSONB, deferred=True, deferred_raiseload=True)
    error: Mapped[str | None] = mapped_column(Text)
    # Values that arrived on static links, reused by every later run of the sink:
    # {sink node id: {pin: value}}.
    static_values: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # Node executions created so far (bounded: loops end).
    node_execution_total: Mapped[int] = mapped_column(Integer, default=0)
    # The wall-clock limit: past it, the sweeper fails the execution.
    deadline_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When its start was last asked of the scheduler (the sweeper asks again if lost).
    requested_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # QUEUED and refused a start (the user was at their running limit, or an older one was
    # waiting): the end of a running execution asks for the oldest parked one.
    parked: Mapped[bool] = mapped_column(Boolean, default=False)
    # For a sub-agent's child execution: the parent's node execution waiting for it.
    parent_node_execution_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    parent_execution_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    depth: Mapped[int] = mapped_column(Integer, default=0)
    # Credit cap of this execution (`max_credits` on execute); None: no cap.
    max_credits: Mapped[int | None] = mapped_column(BigInteger)
    # Unique per user when set: creating again with the same key returns this execution.
    idempotency_key: Mapped[str | None] = mapped_column(Text)
    node_count: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[int] = mapped_column(BigInteger, default=0)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_executions_user_created", "user_id", "created_at"),)


class NodeExecution(Base):
    __tablename__ = "node_executions"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    execution_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("executions.id", ondelete="CASCADE")
    )
    node_id: Mapped[str] = mapped_column(Text)
    block_id: Mapped[str] = mapped_column(Text)
    status: Mapped[str] = mapped_column(Text)
    # Partial while INCOMPLETE (the linked pins received so far), complete once QUEUED.
    inputs: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # [[pin, value], ...] in yield order; set once, with the terminal status.
    outputs: Mapped[list[Any] | None] = mapped_column(JSONB)
    error: Mapped[str | None] = mapped_column(Text)
    attempt: Mapped[int] = mapped_column(Integer, default=0)
    cost: Mapped[int] = mapped_column(BigInteger, default=0)
    # The node's settings from the graph (retry policy, timeout).
    config: Mapped[dict[str, Any]] = mapped_column(JSONB, default=dict)
    # While RUNNING: the claiming runner owns it until then (it heartbeats to extend).
    lease_expires_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # While QUEUED for a retry: not to be dispatched before then.
    retry_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # When its job was last published (the sweeper re-sends a job that seems lost).
    dispatched_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    # True once the scheduler has passed this node execution's outputs along its links.
    applied: Mapped[bool] = mapped_column(Boolean, default=False)
    # Creation order within the execution: values fill the oldest waiting node execution.
    seq: Mapped[int] = mapped_column(BigInteger, Identity())
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    started_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    ended_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_node_executions_exec_node", "execution_id", "node_id", "status"),)


class UserValue(Base):
    """Per-user memory for blocks that persist a value by key."""

    __tablename__ = "user_values"

    user_id: Mapped[str] = mapped_column(Text, primary_key=True)
    key: Mapped[str] = mapped_column(Text, primary_key=True)
    value: Mapped[Any] = mapped_column(JSONB)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class QueuedEvent(Base):
    """A status change or output, recorded by triggers (migrations 0005, 0015) with the
    change, until the event relay numbers it into `execution_events`. No foreign key to
    its execution (migration 0008): its check locked the execution row from every status
    change."""

    __tablename__ = "event_queue"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    execution_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    type: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class ExecutionEvent(Base):
    """A numbered event, written once by the event relay: published when its id is at most
    `EventRelayCursor.published_through`, kept for replay until the prune."""

    __tablename__ = "execution_events"

    id: Mapped[int] = mapped_column(BigInteger, Identity(), primary_key=True)
    execution_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True))
    seq: Mapped[int] = mapped_column(BigInteger)
    type: Mapped[str] = mapped_column(Text)
    data: Mapped[dict[str, Any]] = mapped_column(JSONB)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))


class EventCounter(Base):
    """The last sequence number the event relay gave one of an execution's events (migration
    0016): written by the relay only, under its lock."""

    __tablename__ = "event_counters"

    execution_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    last_seq: Mapped[int] = mapped_column(BigInteger)


class EventRelayCursor(Base):
    """One row: every event with an id up to `published_through` has been published."""

    __tablename__ = "event_relay"

    id: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    published_through: Mapped[int] = mapped_column(BigInteger)


class OutboxMessage(Base):
    """A message committed with the state change that implies it, published after commit."""

    __tablename__ = "outbox"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=True)
    exchange: Mapped[str] = mapped_column(Text)
    routing_key: Mapped[str] = mapped_column(Text)
    message_id: Mapped[str] = mapped_column(Text)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    mandatory: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
