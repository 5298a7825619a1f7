"""Schedules in PostgreSQL: plain async functions taking `session=`, and the missed-slot
rule (`plan_fire`), which is pure.

A due schedule is claimed with `SELECT ... FOR UPDATE SKIP LOCKED`: replicas polling at
the same moment take different schedules, and a replica that dies mid-fire releases its
lock with its transaction, which rolls back whole (fire row, execution, next_run_at).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, delete, func, or_, select, text
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from agentloom_executor.cron import latest_slot, next_slot
from agentloom_executor.repository import now, parse_uuid
from agentloom_executor.schedule_tables import Schedule, ScheduleFire


@dataclass(frozen=True)
class FirePlan:
    """What to do with a due schedule: the slot to fire (None: every missed slot is past
    the grace period, fire nothing) and the schedule's next slot."""

    fire_time: datetime | None
    next_run_at: datetime | None


def plan_fire(
    expression: str, zone: ZoneInfo, *, due_at: datetime, moment: datetime, grace: timedelta
) -> FirePlan:
    """The missed-slot policy. The due slot and any slots after it up to `moment` were
    missed or are due now: fire once, for the latest of them, if it is no older than
    `grace`; skip the rest; the next slot is the first one after `moment`."""
    window_start = max(due_at, moment - grace)
    fire_time = latest_slot(expression, zone, not_before=window_start, not_after=moment)
    if fire_time is None and due_at >= moment - grace:
        fire_time = due_at
    return FirePlan(fire_time, next_slot(expression, zone, moment))


async def lock_user(session: AsyncSession, user_id: str) -> None:
    """Serialise a user's schedule creations (the per-user count stays exact)."""
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('schedules:' || :user_id))"),
        {"user_id": user_id},
    )


async def count_for_user(session: AsyncSession, user_id: str) -> int:
    return int(await session.scalar(select(func.count()).where(Schedule.user_id == user_id)) or 0)


async def insert_schedule(
    session: AsyncSession,
    *,
    user_id: str,
    graph_id: str,
    graph_version: int,
    name: str,
    cron: str,
    timezone: str,
    inputs: dict[str, Any],
    credentials_inputs: dict[str, Any],
    preset_id: str | None,
    next_run_at: datetime | None,
) -> Schedule:
    schedule = Schedule(
        id=uuid.uuid4(),
        user_id=user_id,
        graph_id=graph_id,
        graph_version=graph_version,
        name=name,
        cron=cron,
        timezone=timezone,
        inputs=inputs,
        credentials_inputs=credentials_inputs,
        preset_id=preset_id,
        paused=False,
        next_run_at=next_run_at,
        last_fired_at=None,
        created_at=now(),
    )
    session.add(schedule)
    await session.flush()
    return schedule


async def get_schedule(
    session: AsyncSession,
    *,
    user_id: str,
    schedule_id: str,
    graph_id: str | None = None,
    for_update: bool = False,
) -> Schedule | None:
    """The user's schedule (of `graph_id` when given), or None: also for another user's."""
    parsed = parse_uuid(schedule_id)
    if parsed is None:
        return None
    query = select(Schedule).where(Schedule.id == parsed, Schedule.user_id == user_id)
    if graph_id:
        query = query.where(Schedule.graph_id == graph_id)
    if for_update:
        query = query.with_for_update().execution_options(populate_existing=True)
    return await session.scalar(query)


async def list_schedules(
    session: AsyncSession,
    *,
    user_id: str,
    graph_id: str | None,
    limit: int,
    after: tuple[datetime, uuid.UUID] | None,
) -> list[Schedule]:
    """Newest first; `after` is the (created_at, id) of the last item of the previous page."""
    query = select(Schedule).where(Schedule.user_id == user_id)
    if graph_id:
        query = query.where(Schedule.graph_id == graph_id)
    if after is not None:
        created_at, last_id = after
        query = query.where(
            or_(
                Schedule.created_at < created_at,
                and_(Schedule.created_at == created_at, Schedule.id < last_id),
            )
        )
    query = query.order_by(Schedule.created_at.desc(), Schedule.id.desc()).limit(limit)
    return list((await session.scalars(query)).all())


async def delete_schedule(session: AsyncSession, schedule: Schedule) -> None:
    await session.execute(delete(Schedule).where(Schedule.id == schedule.id))


async def claim_due(session: AsyncSession, moment: datetime) -> Schedule | None:
    """The most overdue schedule no other replica holds, locked until the transaction ends."""
    return await session.scalar(
        select(Schedule)
        .where(
            Schedule.next_run_at.is_not(None),
            Schedule.next_run_at <= moment,
            Schedule.paused.is_(False),
        )
        .order_by(Schedule.next_run_at)
        .limit(1)
        .with_for_update(skip_locked=True)
        .execution_options(populate_existing=True)
    )


async def record_fire(session: AsyncSession, schedule_id: uuid.UUID, fire_time: datetime) -> bool:
    """Insert the (schedule, slot) row; False when that slot has already fired."""
    inserted = await session.execute(
        insert(ScheduleFire)
        .values(schedule_id=schedule_id, fire_time=fire_time, fired_at=now())
        .on_conflict_do_nothing(index_elements=["schedule_id", "fire_time"])
        .returning(ScheduleFire.schedule_id)
    )
    return inserted.one_or_none() is not None


async def set_fire_outcome(
    session: AsyncSession,
    schedule_id: uuid.UUID,
    fire_time: datetime,
    *,
    execution_id: uuid.UUID | None,
    error: str | None,
) -> None:
    fire = await session.get(ScheduleFire, (schedule_id, fire_time))
    if fire is not None:
        fire.execution_id = execution_id
        fire.error = error
