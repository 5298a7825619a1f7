"""Incoming triggers and their deliveries: plain async functions taking `session=`; callers
own the transaction. A trigger's secret (`whsec_...`, Standard Webhooks) is made here, shown
once by the create route, and stored sealed by `vault.KeyRing`, bound to the owner and the
trigger id; only `open_secret` (for verifying a call) ever opens it. Nothing here logs it."""

from __future__ import annotations

import base64
import os
import re
import uuid
from dataclasses import dataclass
from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from agentloom_gateway.tables import Trigger, TriggerDelivery, User
from agentloom_gateway.vault import KeyRing, Sealed

SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
MAX_TRIGGERS_PER_USER = 100
# The execution's idempotency key is `trigger:<uuid>:<delivery id>`, at most 200 characters.
MAX_DELIVERY_ID_CHARS = 150
_DELIVERY_ID = re.compile(r"^[\x21-\x7e]+$")  # printable ASCII, no spaces
_SECRET_FIELD = "secret"


def new_secret() -> str:
    return SECRET_PREFIX + base64.b64encode(os.urandom(SECRET_BYTES)).decode()


def valid_delivery_id(delivery_id: str) -> bool:
    return len(delivery_id) <= MAX_DELIVERY_ID_CHARS and bool(_DELIVERY_ID.match(delivery_id))


def idempotency_key(trigger_id: uuid.UUID, delivery_id: str) -> str:
    """The execution's key: a retried delivery, or a retry after a crash between storing the
    delivery and starting its execution, finds the same execution."""
    return f"trigger:{trigger_id}:{delivery_id}"


async def count_triggers(*, session: AsyncSession, user_id: str) -> int:
    count = await session.scalar(
        select(func.count()).select_from(Trigger).where(Trigger.user_id == uuid.UUID(user_id))
    )
    return int(count or 0)


async def create_trigger(
    *,
    session: AsyncSession,
    keyring: KeyRing,
    user_id: str,
    graph_id: uuid.UUID,
    graph_version: int,
    preset_id: uuid.UUID | None,
    input_name: str,
    description: str,
    enabled: bool,
) -> tuple[Trigger, str]:
    """The stored trigger and its secret (the only time the secret leaves this module)."""
    owner, trigger_id, secret = uuid.UUID(user_id), uuid.uuid4(), new_secret()
    sealed = keyring.seal(owner, trigger_id, {_SECRET_FIELD: secret})
    row = Trigger(
        id=trigger_id,
        user_id=owner,
        graph_id=graph_id,
        graph_version=graph_version,
        preset_id=preset_id,
        input_name=input_name,
        description=description,
        enabled=enabled,
        kek_id=sealed.kek_id,
        wrapped_key=sealed.wrapped_key,
        ciphertext=sealed.ciphertext,
    )
    session.add(row)
    await session.flush()
    await session.refresh(row)
    return row, secret


async def list_triggers(
    *, session: AsyncSession, user_id: str, graph_id: uuid.UUID
) -> list[Trigger]:
    query = select(Trigger).where(
        Trigger.user_id == uuid.UUID(user_id), Trigger.graph_id == graph_id
    )
    return list(await session.scalars(query.order_by(Trigger.created_at, Trigger.id)))


async def get_trigger(
    *, session: AsyncSession, user_id: str, graph_id: uuid.UUID, trigger_id: uuid.UUID
) -> Trigger | None:
    """The user's trigger of that graph; another user's (or graph's) is None too."""
    return await session.scalar(
        select(Trigger).where(
            Trigger.id == trigger_id,
            Trigger.user_id == uuid.UUID(user_id),
            Trigger.graph_id == graph_id,
        )
    )


async def set_enabled(
    *,
    session: AsyncSession,
    user_id: str,
    graph_id: uuid.UUID,
    trigger_id: uuid.UUID,
    enabled: bool,
) -> Trigger | None:
    await session.execute(
        update(Trigger)
        .where(
            Trigger.id == trigger_id,
            Trigger.user_id == uuid.UUID(user_id),
            Trigger.graph_id == graph_id,
        )
        .values(enabled=enabled, updated_at=func.now())
        .execution_options(synchronize_session=False)
    )
    row = await get_trigger(
        session=session, user_id=user_id, graph_id=graph_id, trigger_id=trigger_id
    )
    if row is not None:
        await session.refresh(row)
    return row


async def delete_trigger(
    *, session: AsyncSession, user_id: str, graph_id: uuid.UUID, trigger_id: uuid.UUID
) -> bool:
    row = await get_trigger(
        session=session, user_id=user_id, graph_id=graph_id, trigger_id=trigger_id
    )
    if row is None:
        return False
    await session.delete(row)
    return True


async def find_active(*, session: AsyncSession, trigger_id: uuid.UUID) -> Trigger | None:
    """The trigger a call names, if it is enabled and its owner is not suspended."""
    return await session.scalar(
        select(Trigger)
        .join(User, User.id == Trigger.user_id)
        .where(Trigger.id == trigger_id, Trigger.enabled, User.suspended_at.is_(None))
    )


def open_secret(keyring: KeyRing, trigger: Trigger) -> str:
    sealed = Sealed(trigger.kek_id, trigger.wrapped_key, trigger.ciphertext)
    return keyring.open(trigger.user_id, trigger.id, sealed)[_SECRET_FIELD]


@dataclass(frozen=True)
class Delivery:
    id: uuid.UUID
    delivery_id: str
    execution_id: str | None
    payload: Any


async def find_delivery(
    *, session: AsyncSession, trigger_id: uuid.UUID, delivery_id: str
) -> Delivery | None:
    row = await session.scalar(
        select(TriggerDelivery).where(
            TriggerDelivery.trigger_id == trigger_id, TriggerDelivery.delivery_id == delivery_id
        )
    )
    if row is None:
        return None
    return Delivery(row.id, row.delivery_id, row.execution_id, row.payload)


async def record_delivery(
    *, session: AsyncSession, trigger_id: uuid.UUID, delivery_id: str, payload: Any
) -> Delivery:
    """Store the delivery unless it is already stored; either way, the stored one."""
    await session.execute(
        insert(TriggerDelivery)
        .values(id=uuid.uuid4(), trigger_id=trigger_id, delivery_id=delivery_id, payload=payload)
        .on_conflict_do_nothing(constraint="trigger_deliveries_delivery_key")
    )
    stored = await find_delivery(session=session, trigger_id=trigger_id, delivery_id=delivery_id)
    assert stored is not None  # inserted now or before, and deliveries are never deleted alone
    return stored


async def set_execution(*, session: AsyncSession, delivery: uuid.UUID, execution_id: str) -> None:
    await session.execute(
        update(TriggerDelivery)
        .where(TriggerDelivery.id == delivery)
        .values(execution_id=execution_id)
        .execution_options(synchronize_session=False)
    )
