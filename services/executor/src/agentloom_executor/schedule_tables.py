"""The schedules' tables (schema `executor`, migration 0006): schedules and their fires."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, DateTime, ForeignKey, Index, Integer, Text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.orm import Mapped, mapped_column

from agentloom_executor.tables import Base


class Schedule(Base):
    """A cron schedule of a graph. Due when `next_run_at <= now` and not paused; a
    scheduler claims it with `FOR UPDATE SKIP LOCKED`, so one replica fires each slot."""

    __tablename__ = "schedules"

    id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), primary_key=True)
    user_id: Mapped[str] = mapped_column(Text)
    graph_id: Mapped[str] = mapped_column(Text)
    # 0: whatever version is active when a slot fires.
    graph_version: Mapped[int] = mapped_column(Integer)
    name: Mapped[str] = mapped_column(Text)
    cron: Mapped[str] = mapped_column(Text)
    timezone: Mapped[str] = mapped_column(Text)
    inputs: Mapped[dict[str, Any]] = mapped_column(JSONB)
    credentials_inputs: Mapped[dict[str, Any]] = mapped_column(JSONB)
    # A preset of the graphs service; its inputs are merged under `inputs` at fire time.
    preset_id: Mapped[str | None] = mapped_column(Text)
    paused: Mapped[bool] = mapped_column(Boolean, default=False)
    # The next slot (UTC); None when the expression has no future slot.
    next_run_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_fired_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))

    __table_args__ = (Index("ix_schedules_user_graph", "user_id", "graph_id", "created_at"),)


class ScheduleFire(Base):
    """One fired slot. Unique per (schedule, fire time): a slot can never fire twice."""

    __tablename__ = "schedule_fires"

    schedule_id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), ForeignKey("schedules.id", ondelete="CASCADE"), primary_key=True
    )
    fire_time: Mapped[datetime] = mapped_column(DateTime(timezone=True), primary_key=True)
    # The execution it started; None when it could not start one (`error` says why).
    execution_id: Mapped[uuid.UUID | None] = mapped_column(UUID(as_uuid=True))
    error: Mapped[str | None] = mapped_column(Text)
    fired_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
