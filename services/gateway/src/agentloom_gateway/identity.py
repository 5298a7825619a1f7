"""Users and API keys: plain async functions taking `session=`, used by the routes, the CLI,
the dev launcher and tests. Callers own the transaction (commit or roll back)."""

from __future__ import annotations

import hmac
import uuid
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import or_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from agentloom_gateway import apikeys
from agentloom_gateway.tables import ApiKey, User

ROLES = ("user", "admin")
# Compared against when a public id is unknown, so both failures cost the same.
_NO_HMAC = bytes(32)


class IdentityError(ValueError):
    """A request on identity data that cannot be honoured (bad value, duplicate)."""


class EmailTaken(IdentityError):
    pass


@dataclass(frozen=True)
class CreatedApiKey:
    """A new key: `api_key` is the only time the full key exists outside its owner."""

    id: uuid.UUID
    api_key: str
    record: ApiKey


def validate_timezone(name: str) -> str:
    try:
        zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError) as error:
        raise IdentityError(f"unknown time zone {name!r}") from error
    return name


async def create_user(
    *, session: AsyncSession, email: str, name: str, role: str = "user", timezone: str = "UTC"
) -> User:
    """Add a user; the email is stored lower-cased and must be unused."""
    if role not in ROLES:
        raise IdentityError(f"role must be one of {', '.join(ROLES)}")
    user = User(
        id=uuid.uuid4(),
        email=email.strip().lower(),
        name=name,
        role=role,
        timezone=validate_timezone(timezone),
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError as error:
        raise EmailTaken(f"a user with email {user.email!r} already exists") from error
    await session.refresh(user)
    return user


async def get_user(*, session: AsyncSession, user_id: uuid.UUID | str) -> User | None:
    return await session.get(User, uuid.UUID(str(user_id)))


async def update_user(
    *,
    session: AsyncSession,
    user_id: uuid.UUID | str,
    name: str | None = None,
    timezone: str | None = None,
) -> User | None:
    """Change the user's own profile fields; None leaves a field as it is."""
    user = await get_user(session=session, user_id=user_id)
    if user is None:
        return None
    if name is not None:
        user.name = name
    if timezone is not None:
        user.timezone = validate_timezone(timezone)
    await session.flush()
    return user


async def create_api_key(
    *,
    session: AsyncSession,
    user_id: uuid.UUID | str,
    name: str,
    pepper: bytes,
    scopes: Sequence[str] = (),
    expires_at: datetime | None = None,
) -> CreatedApiKey:
    """Create a key for the user and return it in full, once."""
    key, parts = apikeys.generate()
    record = ApiKey(
        id=uuid.uuid4(),
        user_id=uuid.UUID(str(user_id)),
        public_id=parts.public_id,
        secret_hmac=apikeys.hash_secret(parts.secret, pepper),
        name=name,
        scopes=list(scopes),
        expires_at=expires_at,
    )
    session.add(record)
    try:
        await session.flush()
    except IntegrityError as error:
        raise IdentityError(f"no user {user_id}") from error
    await session.refresh(record)
    return CreatedApiKey(id=record.id, api_key=key, record=record)


async def verify_api_key(
    *,
    session: AsyncSession,
    api_key: str,
    pepper: bytes,
    now: datetime | None = None,
    touch_interval: timedelta = timedelta(minutes=1),
) -> ApiKey | None:
    """The live key record matching `api_key`, or None (malformed, unknown, wrong secret,
    revoked or expired). Records the use, at most once per `touch_interval`."""
    parts = apikeys.parse(api_key)
    if parts is None:
        return None
    record = await session.scalar(select(ApiKey).where(ApiKey.public_id == parts.public_id))
    expected = record.secret_hmac if record is not None else _NO_HMAC
    matches = hmac.compare_digest(apikeys.hash_secret(parts.secret, pepper), expected)
    if record is None or not matches:
        return None
    now = now or datetime.now(UTC)
    expired = record.expires_at is not None and record.expires_at <= now
    if record.revoked_at is not None or expired:
        return None
    stale = now - touch_interval
    if record.last_used_at is None or record.last_used_at < stale:
        await session.execute(
            update(ApiKey)
            .where(
                ApiKey.id == record.id,
                or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < stale),
            )
            .values(last_used_at=now)
        )
    return record


async def list_api_keys(*, session: AsyncSession, user_id: uuid.UUID | str) -> list[ApiKey]:
    """The user's keys, newest first, revoked ones included."""
    rows = await session.scalars(
        select(ApiKey)
        .where(ApiKey.user_id == uuid.UUID(str(user_id)))
        .order_by(ApiKey.created_at.desc(), ApiKey.id)
    )
    return list(rows)


async def get_api_key(
    *, session: AsyncSession, user_id: uuid.UUID | str, key_id: uuid.UUID | str
) -> ApiKey | None:
    """The key if it exists and belongs to the user (another user's key is None too)."""
    return await session.scalar(
        select(ApiKey).where(
            ApiKey.id == uuid.UUID(str(key_id)), ApiKey.user_id == uuid.UUID(str(user_id))
        )
    )


async def revoke_api_key(
    *,
    session: AsyncSession,
    user_id: uuid.UUID | str,
    key_id: uuid.UUID | str,
    now: datetime | None = None,
) -> ApiKey | None:
    """Revoke the user's key (idempotent: the first revocation time is kept)."""
    record = await get_api_key(session=session, user_id=user_id, key_id=key_id)
    if record is not None and record.revoked_at is None:
        record.revoked_at = now or datetime.now(UTC)
        await session.flush()
    return record
