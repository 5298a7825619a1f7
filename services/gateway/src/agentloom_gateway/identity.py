"""Users and API keys: plain async functions taking `session=`, used by the routes, the CLI,
the dev launcher and tests. Callers own the transaction (commit or roll back)."""

from __future__ import annotations

import hmac
import uuid
import zoneinfo
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import bindparam, or_, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from agentloom_gateway import apikeys
from agentloom_gateway.scopes import USER_SCOPES
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
    *,
    session: AsyncSession,
    email: str | None,
    name: str,
    role: str = "user",
    timezone: str = "UTC",
    user_id: uuid.UUID | None = None,
    subject: str | None = None,
) -> User:
    """Add a user; the email is stored lower-cased and must be unused. The JWT subject
    naming the user defaults to its id."""
    if role not in ROLES:
        raise IdentityError(f"role must be one of {', '.join(ROLES)}")
    new_id = user_id or uuid.uuid4()
    user = User(
        id=new_id,
        email=email.strip().lower() if email else None,
        subject=subject or str(new_id),
        name=name,
        role=role,
        timezone=validate_timezone(timezone),
    )
    session.add(user)
    try:
        async with session.begin_nested():
            await session.flush()
    except IntegrityError as error:
        raise EmailTaken(f"a user with email {user.email!r} or this id already exists") from error
    await session.refresh(user)
    return user


async def user_for_subject(
    *, session: AsyncSession, subject: str, email: str | None = None, name: str = ""
) -> User:
    """The user a JWT subject names, created on its first use (race-safe: one row per
    subject). A claimed email is kept only when no other user has it."""
    user = await session.scalar(select(User).where(User.subject == subject))
    if user is not None:
        return user
    values = {
        "id": uuid.uuid4(),
        "subject": subject,
        "name": name or subject[:200],
        "role": "user",
        "timezone": "UTC",
    }
    clean_email = email.strip().lower() if email else None
    if clean_email and await session.scalar(select(User.id).where(User.email == clean_email)):
        clean_email = None
    await session.execute(insert(User).values(**values, email=clean_email).on_conflict_do_nothing())
    user = await session.scalar(select(User).where(User.subject == subject))
    if user is None:  # the email was taken between the check and the insert
        await session.execute(insert(User).values(**values).on_conflict_do_nothing())
        user = await session.scalar(select(User).where(User.subject == subject))
    if user is None:
        raise IdentityError("could not create the user")
    return user


async def list_users(
    *, session: AsyncSession, page_size: int, after: uuid.UUID | None = None
) -> list[User]:
    """One page of users ordered by id, starting after `after`."""
    query = select(User).order_by(User.id).limit(page_size)
    if after is not None:
        query = query.where(User.id > after)
    return list(await session.scalars(query))


async def set_user_suspended(
    *, session: AsyncSession, user_id: uuid.UUID | str, suspended: bool
) -> User | None:
    """Suspend (every credential of the user stops working) or reinstate a user."""
    user = await get_user(session=session, user_id=user_id)
    if user is None:
        return None
    if suspended and user.suspended_at is None:
        user.suspended_at = datetime.now(UTC)
    elif not suspended:
        user.suspended_at = None
    await session.flush()
    return user


async def set_user_role(*, session: AsyncSession, user_id: uuid.UUID | str, role: str) -> User:
    if role not in ROLES:
        raise IdentityError(f"role must be one of {', '.join(ROLES)}")
    user = await get_user(session=session, user_id=user_id)
    if user is None:
        raise IdentityError(f"no user {user_id}")
    user.role = role
    await session.flush()
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
    scopes: Sequence[str] | None = None,
    expires_at: datetime | None = None,
) -> CreatedApiKey:
    """Create a key for the user and return it in full, once. Without `scopes` it gets every
    scope of a plain user (never `admin`, which is only ever granted explicitly)."""
    key, parts = apikeys.generate()
    record = ApiKey(
        id=uuid.uuid4(),
        user_id=uuid.UUID(str(user_id)),
        public_id=parts.public_id,
        secret_hmac=apikeys.hash_secret(parts.secret, pepper),
        name=name,
        scopes=list(dict.fromkeys(USER_SCOPES if scopes is None else scopes)),
        expires_at=expires_at,
    )
    session.add(record)
    try:
        await session.flush()
    except IntegrityError as error:
        raise IdentityError(f"no user {user_id}") from error
    await session.refresh(record)
    return CreatedApiKey(id=record.id, api_key=key, record=record)


@dataclass(frozen=True)
class KeyHolder:
    """What a live API key stands for: the key, its user and the user's role."""

    key_id: uuid.UUID
    user_id: uuid.UUID
    scopes: list[str]
    role: str
    expires_at: datetime | None = None


# Built once: authentication runs on every request (statement building showed in profiles).
_KEY_LOOKUP = (
    select(
        ApiKey.id,
        ApiKey.user_id,
        ApiKey.secret_hmac,
        ApiKey.scopes,
        ApiKey.last_used_at,
        ApiKey.expires_at,
        ApiKey.revoked_at,
        ApiKey.suspended_at,
        User.role,
        User.suspended_at.label("user_suspended_at"),
    )
    .join(User, User.id == ApiKey.user_id)
    .where(ApiKey.public_id == bindparam("public_id"))
)
_KEY_TOUCH = (
    update(ApiKey)
    .where(
        ApiKey.id == bindparam("key_id"),
        or_(ApiKey.last_used_at.is_(None), ApiKey.last_used_at < bindparam("stale")),
    )
    .values(last_used_at=bindparam("used_at"))
)


async def verify_api_key(
    *,
    session: AsyncSession,
    api_key: str,
    pepper: bytes,
    now: datetime | None = None,
    touch_interval: timedelta = timedelta(minutes=1),
) -> ApiKey | None:
    """The live key record matching `api_key`, or None (malformed, unknown, wrong secret,
    revoked, suspended, expired, or its user suspended). Records the use, at most once per
    `touch_interval`."""
    found = await authenticate_api_key(
        connection=session, api_key=api_key, pepper=pepper, now=now, touch_interval=touch_interval
    )
    return await session.get(ApiKey, found.key_id) if found is not None else None


async def authenticate_api_key(
    *,
    connection: AsyncSession | AsyncConnection,
    api_key: str,
    pepper: bytes,
    now: datetime | None = None,
    touch_interval: timedelta = timedelta(minutes=1),
) -> KeyHolder | None:
    """`verify_api_key` for every request: one lookup (two statements when the use is
    recorded), on a session or on a connection (the gateway's is in autocommit: no
    transaction round trips for a read)."""
    parts = apikeys.parse(api_key)
    if parts is None:
        return None
    row = (await connection.execute(_KEY_LOOKUP, {"public_id": parts.public_id})).first()
    expected = row.secret_hmac if row is not None else _NO_HMAC
    matches = hmac.compare_digest(apikeys.hash_secret(parts.secret, pepper), expected)
    if row is None or not matches:
        return None
    now = now or datetime.now(UTC)
    expired = row.expires_at is not None and row.expires_at <= now
    if (
        row.revoked_at is not None
        or row.suspended_at is not None
        or row.user_suspended_at is not None
        or expired
    ):
        return None
    stale = now - touch_interval
    if row.last_used_at is None or row.last_used_at < stale:
        await connection.execute(_KEY_TOUCH, {"key_id": row.id, "stale": stale, "used_at": now})
    return KeyHolder(
        key_id=row.id,
        user_id=row.user_id,
        scopes=list(row.scopes),
        role=row.role,
        expires_at=row.expires_at,
    )


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


async def update_api_key(
    *,
    session: AsyncSession,
    user_id: uuid.UUID | str,
    key_id: uuid.UUID | str,
    name: str | None = None,
    scopes: Sequence[str] | None = None,
    suspended: bool | None = None,
) -> ApiKey | None:
    """Rename, change the scopes of, suspend or resume the user's key; None leaves a field
    as it is. A revoked key stays revoked."""
    record = await get_api_key(session=session, user_id=user_id, key_id=key_id)
    if record is None:
        return None
    if name is not None:
        record.name = name
    if scopes is not None:
        record.scopes = list(dict.fromkeys(scopes))
    if suspended is True and record.suspended_at is None:
        record.suspended_at = datetime.now(UTC)
    elif suspended is False:
        record.suspended_at = None
    await session.flush()
    return record
