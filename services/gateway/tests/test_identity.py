"""Users and API keys in the identity schema."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentloom_gateway import apikeys, identity
from agentloom_gateway.tables import ApiKey

Sessions = async_sessionmaker[AsyncSession]


def _email() -> str:
    return f"{uuid.uuid4().hex[:12]}@Example.com"


async def test_create_user_stores_a_lower_cased_email_and_defaults(sessions: Sessions) -> None:
    email = _email()
    async with sessions.begin() as session:
        user = await identity.create_user(session=session, email=email, name="Ada")
    async with sessions.begin() as session:
        stored = await identity.get_user(session=session, user_id=user.id)
    assert stored is not None
    assert (stored.email, stored.role, stored.timezone) == (email.lower(), "user", "UTC")


async def test_create_user_rejects_a_taken_email(sessions: Sessions) -> None:
    email = _email()
    async with sessions.begin() as session:
        await identity.create_user(session=session, email=email, name="Ada")
    with pytest.raises(identity.EmailTaken):
        async with sessions.begin() as session:
            await identity.create_user(session=session, email=email.upper(), name="Eve")


@pytest.mark.parametrize("options", [{"role": "root"}, {"timezone": "Mars/Olympus"}])
async def test_create_user_rejects_bad_values(sessions: Sessions, options: dict[str, str]) -> None:
    with pytest.raises(identity.IdentityError):
        async with sessions.begin() as session:
            await identity.create_user(session=session, email=_email(), name="A", **options)


async def _user(sessions: Sessions) -> uuid.UUID:
    async with sessions.begin() as session:
        return (await identity.create_user(session=session, email=_email(), name="K")).id


async def test_a_created_key_verifies_and_only_its_hmac_is_stored(
    sessions: Sessions, pepper: bytes
) -> None:
    user_id = await _user(sessions)
    async with sessions.begin() as session:
        created = await identity.create_api_key(
            session=session, user_id=user_id, name="ci", pepper=pepper
        )
    async with sessions.begin() as session:
        record = await identity.verify_api_key(
            session=session, api_key=created.api_key, pepper=pepper
        )
        stored = await session.scalar(select(ApiKey).where(ApiKey.id == created.id))
    assert record is not None and record.user_id == user_id
    assert stored is not None
    secret = created.api_key.split("_")[2]
    assert secret.encode() not in stored.secret_hmac
    assert stored.secret_hmac == apikeys.hash_secret(secret, pepper)


async def test_verify_rejects_a_wrong_secret_or_pepper(sessions: Sessions, pepper: bytes) -> None:
    user_id = await _user(sessions)
    async with sessions.begin() as session:
        created = await identity.create_api_key(
            session=session, user_id=user_id, name="ci", pepper=pepper
        )
    public_id = created.api_key.split("_")[1]
    _, other = apikeys.generate()
    body = f"agl_{public_id}_{other.secret}"
    forged = f"{body}_{apikeys.checksum(body)}"
    async with sessions.begin() as session:
        assert await identity.verify_api_key(session=session, api_key=forged, pepper=pepper) is None
        assert (
            await identity.verify_api_key(session=session, api_key=created.api_key, pepper=b"x")
            is None
        )


async def test_verify_rejects_revoked_and_expired_keys(sessions: Sessions, pepper: bytes) -> None:
    user_id = await _user(sessions)
    soon = datetime.now(UTC) + timedelta(hours=1)
    async with sessions.begin() as session:
        revoked = await identity.create_api_key(
            session=session, user_id=user_id, name="r", pepper=pepper
        )
        expiring = await identity.create_api_key(
            session=session, user_id=user_id, name="e", pepper=pepper, expires_at=soon
        )
        await identity.revoke_api_key(session=session, user_id=user_id, key_id=revoked.id)
    async with sessions.begin() as session:
        verify = identity.verify_api_key
        assert await verify(session=session, api_key=revoked.api_key, pepper=pepper) is None
        assert await verify(session=session, api_key=expiring.api_key, pepper=pepper) is not None
        later = soon + timedelta(seconds=1)
        assert (
            await verify(session=session, api_key=expiring.api_key, pepper=pepper, now=later)
            is None
        )


async def test_last_used_at_is_written_at_most_once_per_interval(
    sessions: Sessions, pepper: bytes
) -> None:
    user_id = await _user(sessions)
    async with sessions.begin() as session:
        created = await identity.create_api_key(
            session=session, user_id=user_id, name="t", pepper=pepper
        )
    start = datetime.now(UTC)

    async def use_at(moment: datetime) -> datetime | None:
        async with sessions.begin() as session:
            await identity.verify_api_key(
                session=session, api_key=created.api_key, pepper=pepper, now=moment
            )
        async with sessions.begin() as session:
            return await session.scalar(select(ApiKey.last_used_at).where(ApiKey.id == created.id))

    assert await use_at(start) == start
    assert await use_at(start + timedelta(seconds=30)) == start
    assert await use_at(start + timedelta(seconds=61)) == start + timedelta(seconds=61)


async def test_another_users_key_is_invisible(sessions: Sessions, pepper: bytes) -> None:
    owner, stranger = await _user(sessions), await _user(sessions)
    async with sessions.begin() as session:
        created = await identity.create_api_key(
            session=session, user_id=owner, name="mine", pepper=pepper
        )
        found = await identity.get_api_key(session=session, user_id=stranger, key_id=created.id)
        revoked = await identity.revoke_api_key(
            session=session, user_id=stranger, key_id=created.id
        )
    assert found is None and revoked is None
