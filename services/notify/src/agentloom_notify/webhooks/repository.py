"""Database functions of outgoing webhooks; each takes the caller's `session=` (one
transaction per call site) and checks ownership by `user_id` in the query itself."""

from __future__ import annotations

import base64
import binascii
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import and_, delete, func, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from agentloom_common.errors import FailedPrecondition
from agentloom_notify.webhooks import domain
from agentloom_notify.webhooks.sealing import Sealed
from agentloom_notify.webhooks.tables import (
    DELIVERED,
    FAILED,
    PENDING,
    Attempt,
    Delivery,
    Endpoint,
)


class LimitReached(FailedPrecondition):
    reason = "WEBHOOK_LIMIT_REACHED"


class EndpointDisabled(FailedPrecondition):
    reason = "WEBHOOK_DISABLED"


# --- endpoints -------------------------------------------------------------------------------


async def create_endpoint(
    session: AsyncSession,
    *,
    endpoint_id: uuid.UUID,
    user_id: str,
    url: str,
    description: str,
    event_types: list[str],
    sealed: Sealed,
    max_per_user: int,
    now: datetime,
) -> Endpoint:
    """Insert an endpoint unless the user already has `max_per_user` of them."""
    # One creation at a time per user, so two concurrent ones cannot both pass the count.
    await session.execute(
        text("SELECT pg_advisory_xact_lock(hashtext('notify.webhooks/' || :user_id))"),
        {"user_id": user_id},
    )
    count = await session.scalar(
        select(func.count()).select_from(Endpoint).where(Endpoint.user_id == user_id)
    )
    if (count or 0) >= max_per_user:
        raise LimitReached(
            f"a user may have at most {max_per_user} webhook endpoints",
            metadata={"limit": str(max_per_user)},
        )
    endpoint = Endpoint(
        id=endpoint_id,
        user_id=user_id,
        url=url,
        description=description,
        event_types=event_types,
        enabled=True,
        secret_key_id=sealed.key_id,
        secret_sealed=sealed.data,
        created_at=now,
        updated_at=now,
    )
    session.add(endpoint)
    await session.flush()
    return endpoint


async def get_endpoint(
    session: AsyncSession, user_id: str, endpoint_id: uuid.UUID, *, lock: bool = False
) -> Endpoint | None:
    query = select(Endpoint).where(Endpoint.id == endpoint_id, Endpoint.user_id == user_id)
    if lock:
        query = query.with_for_update()
    endpoint: Endpoint | None = await session.scalar(query)
    return endpoint


async def list_endpoints(
    session: AsyncSession, user_id: str, *, page_size: int, page_token: str
) -> tuple[list[Endpoint], str]:
    """Oldest first; the token is the (created_at, id) of the last row of the page."""
    query = select(Endpoint).where(Endpoint.user_id == user_id)
    if page_token:
        created_at, last_id = _decode_endpoint_token(page_token)
        query = query.where(
            or_(
                Endpoint.created_at > created_at,
                and_(Endpoint.created_at == created_at, Endpoint.id > last_id),
            )
        )
    query = query.order_by(Endpoint.created_at, Endpoint.id).limit(page_size + 1)
    rows = list((await session.scalars(query)).all())
    if len(rows) <= page_size:
        return rows, ""
    last = rows[page_size - 1]
    token = base64.urlsafe_b64encode(f"{last.created_at.isoformat()}|{last.id}".encode()).decode()
    return rows[:page_size], token


def _decode_endpoint_token(token: str) -> tuple[datetime, uuid.UUID]:
    try:
        created_at, last_id = base64.urlsafe_b64decode(token.encode()).decode().split("|")
        return datetime.fromisoformat(created_at), uuid.UUID(last_id)
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise domain.field_error("page_token", "not a page token of this list") from None


async def delete_endpoint(session: AsyncSession, user_id: str, endpoint_id: uuid.UUID) -> bool:
    """Delete an endpoint with its deliveries and their log (nothing more is sent)."""
    result = await session.execute(
        delete(Endpoint)
        .where(Endpoint.id == endpoint_id, Endpoint.user_id == user_id)
        .returning(Endpoint.id)
    )
    return result.first() is not None


async def enable_endpoint(
    session: AsyncSession, user_id: str, endpoint_id: uuid.UUID, *, now: datetime
) -> Endpoint | None:
    endpoint = await get_endpoint(session, user_id, endpoint_id, lock=True)
    if endpoint is None:
        return None
    if not endpoint.enabled:
        endpoint.enabled = True
        endpoint.disabled_reason = None
        endpoint.failing_since = None
        endpoint.updated_at = now
    return endpoint


async def disable_endpoint(
    session: AsyncSession, endpoint_id: uuid.UUID, reason: str, *, now: datetime
) -> None:
    """Disable an endpoint and fail what was still pending for it: nothing more is sent."""
    await session.execute(
        update(Endpoint)
        .where(Endpoint.id == endpoint_id, Endpoint.enabled.is_(True))
        .values(enabled=False, disabled_reason=reason, updated_at=now)
    )
    await session.execute(
        update(Delivery)
        .where(Delivery.endpoint_id == endpoint_id, Delivery.status == PENDING)
        .values(status=FAILED, next_attempt_at=None)
    )


# --- events in -------------------------------------------------------------------------------


@dataclass(frozen=True)
class Event:
    event_id: str
    type: str
    user_id: str
    payload: str


async def record_event(session: AsyncSession, event: Event, *, now: datetime) -> int:
    """One pending delivery per enabled endpoint of the event's user that wants its type;
    a delivery that already exists (a redelivered bus message) is left alone. Returns how
    many were created."""
    return await record_events(session, [event], now=now)


async def wants_events(session: AsyncSession, user_id: str, event_types: Sequence[str]) -> bool:
    """Whether an enabled endpoint of `user_id` wants events of one of `event_types`."""
    types = await session.scalars(
        select(Endpoint.event_types).where(Endpoint.user_id == user_id, Endpoint.enabled.is_(True))
    )
    return any(domain.matches(wanted, kind) for wanted in types for kind in event_types)


async def record_events(session: AsyncSession, events: Sequence[Event], *, now: datetime) -> int:
    """`record_event` for a batch of events: one query for the endpoints of their users,
    one insert for every delivery."""
    users = {event.user_id for event in events}
    if not users:
        return 0
    endpoints: dict[str, list[tuple[uuid.UUID, list[str]]]] = {}
    for endpoint_id, user_id, types in (
        await session.execute(
            select(Endpoint.id, Endpoint.user_id, Endpoint.event_types).where(
                Endpoint.user_id.in_(users), Endpoint.enabled.is_(True)
            )
        )
    ).all():
        endpoints.setdefault(user_id, []).append((endpoint_id, types))
    rows = [
        {
            "id": uuid.uuid4(),
            "endpoint_id": endpoint_id,
            "user_id": event.user_id,
            "event_id": event.event_id,
            "event_type": event.type,
            "webhook_id": domain.new_webhook_id(),
            "payload": event.payload,
            "status": PENDING,
            "next_attempt_at": now,
            "created_at": now,
        }
        for event in events
        for endpoint_id, types in endpoints.get(event.user_id, ())
        if domain.matches(types, event.type)
    ]
    if not rows:
        return 0
    result = await session.execute(
        insert(Delivery)
        .values(rows)
        .on_conflict_do_nothing(index_elements=["endpoint_id", "event_id"])
        .returning(Delivery.id)
    )
    return len(result.all())


# --- the delivery log ------------------------------------------------------------------------


async def list_deliveries(
    session: AsyncSession,
    endpoint_id: uuid.UUID,
    *,
    status: str | None,
    page_size: int,
    page_token: str,
) -> tuple[list[Delivery], dict[uuid.UUID, list[Attempt]], str]:
    """Newest first, with each delivery's attempts (oldest first)."""
    query = select(Delivery).where(Delivery.endpoint_id == endpoint_id)
    if status is not None:
        query = query.where(Delivery.status == status)
    if page_token:
        query = query.where(Delivery.seq < _decode_seq_token(page_token))
    query = query.order_by(Delivery.seq.desc()).limit(page_size + 1)
    rows = list((await session.scalars(query)).all())
    token = ""
    if len(rows) > page_size:
        rows = rows[:page_size]
        token = base64.urlsafe_b64encode(str(rows[-1].seq).encode()).decode()
    attempts: dict[uuid.UUID, list[Attempt]] = {row.id: [] for row in rows}
    if rows:
        found = await session.scalars(
            select(Attempt)
            .where(Attempt.delivery_id.in_(list(attempts)))
            .order_by(Attempt.delivery_id, Attempt.attempt, Attempt.id)
        )
        for attempt in found:
            attempts[attempt.delivery_id].append(attempt)
    return rows, attempts, token


def _decode_seq_token(token: str) -> int:
    try:
        return int(base64.urlsafe_b64decode(token.encode()).decode())
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise domain.field_error("page_token", "not a page token of this list") from None


async def get_delivery(
    session: AsyncSession, endpoint_id: uuid.UUID, delivery_id: uuid.UUID
) -> tuple[Delivery, list[Attempt]] | None:
    delivery = await session.scalar(
        select(Delivery).where(Delivery.id == delivery_id, Delivery.endpoint_id == endpoint_id)
    )
    if delivery is None:
        return None
    attempts = await session.scalars(
        select(Attempt).where(Attempt.delivery_id == delivery_id).order_by(Attempt.attempt)
    )
    return delivery, list(attempts)


async def redeliver(
    session: AsyncSession,
    user_id: str,
    endpoint_id: uuid.UUID,
    delivery_id: uuid.UUID,
    *,
    now: datetime,
) -> Delivery | None:
    """Make a delivery due now, with its own webhook-id. A delivered or failed one gets this
    single attempt; a pending one keeps its remaining retries."""
    endpoint = await get_endpoint(session, user_id, endpoint_id, lock=True)
    if endpoint is None:
        return None
    delivery = await session.scalar(
        select(Delivery)
        .where(Delivery.id == delivery_id, Delivery.endpoint_id == endpoint_id)
        .with_for_update()
    )
    if delivery is None:
        return None
    if not endpoint.enabled:
        raise EndpointDisabled("the endpoint is disabled: enable it before redelivering")
    if delivery.status != PENDING:
        delivery.auto_retry = False
    delivery.status = PENDING
    delivery.next_attempt_at = now
    delivery.manual_attempt = True
    return delivery


# --- the workers -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Claim:
    delivery_id: uuid.UUID
    endpoint_id: uuid.UUID
    user_id: str
    webhook_id: str
    payload: str
    attempt: int
    manual: bool
    auto_retry: bool
    url: str
    sealed: Sealed


async def claim_due(
    session: AsyncSession, *, limit: int, now: datetime, lease: timedelta
) -> list[Claim]:
    """Take up to `limit` due deliveries of enabled endpoints (rows other workers hold are
    skipped) and lease them: they come due again if this worker dies before recording."""
    due = (
        select(Delivery.id)
        .join(Endpoint, Endpoint.id == Delivery.endpoint_id)
        .where(
            Delivery.status == PENDING,
            Delivery.next_attempt_at <= now,
            Endpoint.enabled.is_(True),
        )
        .order_by(Delivery.next_attempt_at)
        .limit(limit)
        .with_for_update(of=Delivery, skip_locked=True)
        .cte("due")
    )
    claimed = (
        await session.execute(
            update(Delivery)
            .where(Delivery.id.in_(select(due.c.id)))
            .values(attempt_count=Delivery.attempt_count + 1, next_attempt_at=now + lease)
            .returning(
                Delivery.id,
                Delivery.endpoint_id,
                Delivery.user_id,
                Delivery.webhook_id,
                Delivery.payload,
                Delivery.attempt_count,
                Delivery.manual_attempt,
                Delivery.auto_retry,
            )
        )
    ).all()
    if not claimed:
        return []
    endpoints = {
        row.id: row
        for row in (
            await session.execute(
                select(
                    Endpoint.id, Endpoint.url, Endpoint.secret_key_id, Endpoint.secret_sealed
                ).where(Endpoint.id.in_({row.endpoint_id for row in claimed}))
            )
        ).all()
    }
    return [
        Claim(
            delivery_id=row.id,
            endpoint_id=row.endpoint_id,
            user_id=row.user_id,
            webhook_id=row.webhook_id,
            payload=row.payload,
            attempt=row.attempt_count,
            manual=row.manual_attempt,
            auto_retry=row.auto_retry,
            url=endpoints[row.endpoint_id].url,
            sealed=Sealed(
                endpoints[row.endpoint_id].secret_key_id, endpoints[row.endpoint_id].secret_sealed
            ),
        )
        for row in claimed
    ]


@dataclass(frozen=True)
class Outcome:
    started_at: datetime
    duration_ms: int
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and domain.is_success(self.status_code)

    @property
    def gone(self) -> bool:
        return self.status_code == 410


async def record_outcome(
    session: AsyncSession,
    claim: Claim,
    outcome: Outcome,
    *,
    now: datetime,
    retry_in_s: float | None,
    disable_after: timedelta,
) -> str | None:
    """Log the attempt and move the delivery on: delivered, retried at `now + retry_in_s`, or
    failed (None). Disables the endpoint on 410 or after `disable_after` of failures. Returns
    the delivery's new status, or None when the claim was stale (taken over, or the endpoint
    deleted): then nothing changes but the log."""
    # The endpoint before the delivery, the order `redeliver` takes: taken the other way
    # round, an outcome and a manual redelivery deadlocked (seen as a 500 on redeliver).
    await session.execute(
        select(Endpoint.id).where(Endpoint.id == claim.endpoint_id).with_for_update()
    )
    current = await session.scalar(
        select(Delivery.id)
        .where(
            Delivery.id == claim.delivery_id,
            Delivery.attempt_count == claim.attempt,
            Delivery.status == PENDING,
        )
        .with_for_update()
    )
    exists = current is not None or await session.scalar(
        select(Delivery.id).where(Delivery.id == claim.delivery_id)
    )
    if exists:
        session.add(
            Attempt(
                delivery_id=claim.delivery_id,
                attempt=claim.attempt,
                started_at=outcome.started_at,
                status_code=outcome.status_code,
                duration_ms=outcome.duration_ms,
                error=outcome.error,
                manual=claim.manual,
            )
        )
    if current is None:
        return None
    if outcome.delivered:
        await _set_delivery(session, claim, status=DELIVERED, delivered_at=now)
        await session.execute(
            update(Endpoint)
            .where(Endpoint.id == claim.endpoint_id, Endpoint.failing_since.is_not(None))
            .values(failing_since=None)
        )
        return DELIVERED
    if outcome.gone:
        await _set_delivery(session, claim, status=FAILED)
        await disable_endpoint(
            session, claim.endpoint_id, "the endpoint answered 410 Gone", now=now
        )
        return FAILED
    failing_since = await session.scalar(
        update(Endpoint)
        .where(Endpoint.id == claim.endpoint_id)
        .values(failing_since=func.coalesce(Endpoint.failing_since, now))
        .returning(Endpoint.failing_since)
    )
    if failing_since is not None and now - failing_since >= disable_after:
        await _set_delivery(session, claim, status=FAILED)
        await disable_endpoint(
            session,
            claim.endpoint_id,
            f"every delivery failed since {failing_since.isoformat()}",
            now=now,
        )
        return FAILED
    if retry_in_s is None or not claim.auto_retry:
        await _set_delivery(session, claim, status=FAILED)
        return FAILED
    await _set_delivery(
        session, claim, status=PENDING, next_attempt_at=now + timedelta(seconds=retry_in_s)
    )
    return PENDING


async def _set_delivery(
    session: AsyncSession,
    claim: Claim,
    *,
    status: str,
    next_attempt_at: datetime | None = None,
    delivered_at: datetime | None = None,
) -> None:
    values: dict[str, object] = {
        "status": status,
        "next_attempt_at": next_attempt_at,
        "manual_attempt": False,
    }
    if delivered_at is not None:
        values["delivered_at"] = delivered_at
    await session.execute(update(Delivery).where(Delivery.id == claim.delivery_id).values(values))
