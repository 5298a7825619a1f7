"""The credentials vault: users' integration credentials, one row each, secret fields sealed
by `vault.KeyRing`. Plain async functions taking `session=`; callers own the transaction.
Nothing here logs or returns a secret except `reveal_credential` (for the runner's gRPC)."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentloom_gateway.tables import Credential
from agentloom_gateway.vault import KeyRing, Sealed, VaultError

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class KindSpec:
    """Which secret and non-secret fields a kind of credential has."""

    secrets: frozenset[str]
    optional_secrets: frozenset[str] = frozenset()
    attributes: frozenset[str] = frozenset()
    optional_attributes: frozenset[str] = frozenset()


KINDS: dict[str, KindSpec] = {
    "api_key": KindSpec(frozenset({"api_key"})),
    "user_password": KindSpec(frozenset({"password"}), attributes=frozenset({"username"})),
    "http_header": KindSpec(
        frozenset({"value"}),
        attributes=frozenset({"header_name"}),
        optional_attributes=frozenset({"host"}),
    ),
    "oauth2": KindSpec(
        frozenset({"access_token"}),
        optional_secrets=frozenset({"refresh_token"}),
        optional_attributes=frozenset({"scopes", "expires_at", "username"}),
    ),
}


def field_problems(
    kind: str, secrets: Mapping[str, object] | None, attributes: Mapping[str, object] | None
) -> list[tuple[str, str]]:
    """(field, message) for each field the kind lacks or does not have. Names only: a
    message never quotes a value."""
    spec = KINDS[kind]
    problems: list[tuple[str, str]] = []
    for label, given, required, optional in (
        ("secrets", secrets, spec.secrets, spec.optional_secrets),
        ("attributes", attributes, spec.attributes, spec.optional_attributes),
    ):
        if given is None:
            continue
        for name in sorted(required - given.keys()):
            problems.append((f"{label}.{name}", f"required for a {kind} credential"))
        for name in sorted(given.keys() - required - optional):
            problems.append((f"{label}.{name}", f"not a field of a {kind} credential"))
    return problems


def _sealed(row: Credential) -> Sealed:
    return Sealed(row.kek_id, row.wrapped_key, row.ciphertext)


async def create_credential(
    *,
    session: AsyncSession,
    keyring: KeyRing,
    user_id: uuid.UUID | str,
    provider: str,
    kind: str,
    title: str,
    secrets: Mapping[str, str],
    attributes: Mapping[str, str],
) -> Credential:
    owner, credential_id = uuid.UUID(str(user_id)), uuid.uuid4()
    sealed = keyring.seal(owner, credential_id, secrets)
    row = Credential(
        id=credential_id,
        user_id=owner,
        provider=provider,
        kind=kind,
        title=title,
        attributes=dict(attributes),
        kek_id=sealed.kek_id,
        wrapped_key=sealed.wrapped_key,
        ciphertext=sealed.ciphertext,
    )
    session.add(row)
    await session.flush()
    await session.refresh(row)
    return row


async def list_credentials(
    *, session: AsyncSession, user_id: uuid.UUID | str, provider: str | None = None
) -> list[Credential]:
    query = select(Credential).where(Credential.user_id == uuid.UUID(str(user_id)))
    if provider:
        query = query.where(Credential.provider == provider)
    return list(await session.scalars(query.order_by(Credential.created_at, Credential.id)))


async def get_credential(
    *, session: AsyncSession, user_id: uuid.UUID | str, credential_id: uuid.UUID | str
) -> Credential | None:
    """The credential if it exists and is the user's (another user's is None too)."""
    return await session.scalar(
        select(Credential).where(
            Credential.id == uuid.UUID(str(credential_id)),
            Credential.user_id == uuid.UUID(str(user_id)),
        )
    )


async def update_credential(
    *,
    session: AsyncSession,
    keyring: KeyRing,
    user_id: uuid.UUID | str,
    credential_id: uuid.UUID | str,
    title: str | None = None,
    secrets: Mapping[str, str] | None = None,
    attributes: Mapping[str, str] | None = None,
) -> Credential | None:
    """Rename, or replace the secret fields (resealed under a new data key) or attributes."""
    row = await get_credential(session=session, user_id=user_id, credential_id=credential_id)
    if row is None:
        return None
    if title is not None:
        row.title = title
    if attributes is not None:
        row.attributes = dict(attributes)
    if secrets is not None:
        sealed = keyring.seal(row.user_id, row.id, secrets)
        row.kek_id, row.wrapped_key, row.ciphertext = (
            sealed.kek_id,
            sealed.wrapped_key,
            sealed.ciphertext,
        )
    row.updated_at = datetime.now(UTC)
    await session.flush()
    return row


async def delete_credential(
    *, session: AsyncSession, user_id: uuid.UUID | str, credential_id: uuid.UUID | str
) -> bool:
    row = await get_credential(session=session, user_id=user_id, credential_id=credential_id)
    if row is None:
        return False
    await session.delete(row)
    await session.flush()
    return True


async def reveal_credential(
    *,
    session: AsyncSession,
    keyring: KeyRing,
    user_id: uuid.UUID | str,
    credential_id: uuid.UUID | str,
) -> tuple[Credential, dict[str, str]] | None:
    """The user's credential with its secret fields opened; `VaultError` (logged with the
    credential id and key id, never the data) when it does not open."""
    row = await get_credential(session=session, user_id=user_id, credential_id=credential_id)
    if row is None:
        return None
    try:
        return row, keyring.open(row.user_id, row.id, _sealed(row))
    except VaultError:
        log.error(
            "credential does not decrypt",
            extra={"fields": {"credential_id": str(row.id), "kek_id": row.kek_id}},
        )
        raise


async def rewrap_credentials(
    sessions: async_sessionmaker[AsyncSession], keyring: KeyRing, *, batch_size: int = 100
) -> int:
    """Move every data key to the current KEK, a batch per transaction, while the gateway
    keeps serving (a row is only ever swapped if its KEK is still the one it was read with).
    Returns how many were rewrapped; a row that does not open stops the run loudly."""
    done = 0
    while True:
        async with sessions.begin() as session:
            rows = list(
                await session.scalars(
                    select(Credential)
                    .where(Credential.kek_id != keyring.current)
                    .order_by(Credential.id)
                    .limit(batch_size)
                    .with_for_update(skip_locked=True)
                )
            )
            for row in rows:
                sealed = keyring.rewrap(row.user_id, row.id, _sealed(row))
                await session.execute(
                    update(Credential)
                    .where(Credential.id == row.id, Credential.kek_id == row.kek_id)
                    .values(kek_id=sealed.kek_id, wrapped_key=sealed.wrapped_key)
                )
        done += len(rows)
        if len(rows) < batch_size:
            return done
