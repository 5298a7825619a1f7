"""`python -m agentloom_gateway [serve|migrate|create-user|create-api-key|mint-token|
rewrap-credentials]`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
import uuid
from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import uvicorn
from sqlalchemy.ext.asyncio import AsyncSession

from agentloom_common import process
from agentloom_common.db import create_engine, create_session_factory
from agentloom_common.logging import setup_logging
from agentloom_common.migrations import upgrade
from agentloom_gateway import credentials, identity, jwt_auth
from agentloom_gateway.access_wiring import keyring_from
from agentloom_gateway.app import create_app
from agentloom_gateway.scopes import ALL_SCOPES
from agentloom_gateway.settings import GatewaySettings
from agentloom_gateway.tables import SCHEMA, User
from agentloom_gateway.vault import VaultError


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="agentloom_gateway")
    commands = parser.add_subparsers(dest="command")
    commands.add_parser("serve", help="serve the REST API (default)")
    commands.add_parser("migrate", help="migrate the identity schema")
    user = commands.add_parser("create-user", help='add a user; prints {"user_id": ...}')
    user.add_argument("--email", required=True)
    user.add_argument("--name", required=True)
    user.add_argument("--role", choices=identity.ROLES, default="user")
    user.add_argument("--timezone", default="UTC")
    key = commands.add_parser(
        "create-api-key", help='add an API key; prints {"api_key": ..., "id": ...}'
    )
    key.add_argument("--user-id", required=True)
    key.add_argument("--name", required=True)
    key.add_argument("--expires-in-days", type=int, default=None)
    key.add_argument(
        "--scope",
        action="append",
        choices=ALL_SCOPES,
        help="repeat for several (default: every scope of a plain user)",
    )
    token = commands.add_parser(
        "mint-token",
        help="mint an HS256 JWT for a user (made if missing); prints "
        '{"token": ..., "user_id": ..., "expires_at": ...}',
    )
    token.add_argument("--user-id", required=True, help="a user id, or a new JWT subject")
    token.add_argument("--role", choices=identity.ROLES, default=None)
    token.add_argument("--ttl", type=int, default=3600, help="seconds (default 3600)")
    commands.add_parser(
        "rewrap-credentials",
        help="rewrap every credential's data key with the current key-encryption key; "
        'prints {"rewrapped": n}',
    )
    return parser


async def _create_user(settings: GatewaySettings, args: argparse.Namespace) -> dict[str, str]:
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with create_session_factory(engine).begin() as session:
            user = await identity.create_user(
                session=session,
                email=args.email,
                name=args.name,
                role=args.role,
                timezone=args.timezone,
            )
        return {"user_id": str(user.id)}
    finally:
        await engine.dispose()


async def _create_api_key(settings: GatewaySettings, args: argparse.Namespace) -> dict[str, str]:
    expires_at = None
    if args.expires_in_days is not None:
        expires_at = datetime.now(UTC) + timedelta(days=args.expires_in_days)
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with create_session_factory(engine).begin() as session:
            created = await identity.create_api_key(
                session=session,
                user_id=args.user_id,
                name=args.name,
                pepper=settings.api_key_pepper.get_secret_value().encode(),
                expires_at=expires_at,
                scopes=args.scope,
            )
        return {"api_key": created.api_key, "id": str(created.id)}
    finally:
        await engine.dispose()


async def _mint_token(settings: GatewaySettings, args: argparse.Namespace) -> dict[str, str]:
    """The user named by `--user-id` (an id, or a subject: created when unknown, with
    `--role` applied), and a token for it."""
    if settings.jwt_mode != "hs256":
        raise ValueError("mint-token needs AGENTLOOM_JWT_MODE=hs256 (the identity provider mints)")
    if args.ttl <= 0:
        raise ValueError("--ttl must be positive")
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        async with create_session_factory(engine).begin() as session:
            user = await _user_named(session, args.user_id)
            if args.role is not None and user.role != args.role:
                user = await identity.set_user_role(
                    session=session, user_id=user.id, role=args.role
                )
        ttl = timedelta(seconds=args.ttl)
        now = datetime.now(UTC)
        token = jwt_auth.mint_token(settings, subject=user.subject, ttl=ttl, now=now)
        return {"token": token, "user_id": str(user.id), "expires_at": (now + ttl).isoformat()}
    finally:
        await engine.dispose()


async def _user_named(session: AsyncSession, name: str) -> User:
    try:
        user = await identity.get_user(session=session, user_id=uuid.UUID(name))
    except ValueError:
        user = None
    if user is None:
        user = await identity.user_for_subject(session=session, subject=name)
    return user


async def _rewrap(settings: GatewaySettings, args: argparse.Namespace) -> dict[str, int]:
    engine = create_engine(settings.database_url, pool_size=1)
    try:
        count = await credentials.rewrap_credentials(
            create_session_factory(engine), keyring_from(settings)
        )
        return {"rewrapped": count}
    finally:
        await engine.dispose()


async def _run(job: Awaitable[Mapping[str, Any]]) -> Mapping[str, Any]:
    return await job


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    settings = GatewaySettings()
    setup_logging("gateway", settings.log_level)
    command = args.command or "serve"
    if command == "serve":
        uvicorn.run(
            create_app(settings, on_ready=process.started),
            host=settings.host,
            port=settings.port,
            log_config=None,
            timeout_graceful_shutdown=int(settings.shutdown_grace_s),
            timeout_keep_alive=settings.keep_alive_s,
        )
    elif command == "migrate":
        upgrade(settings.database_url, "agentloom_gateway", SCHEMA)
    else:
        runners: dict[str, Callable[..., Awaitable[Mapping[str, Any]]]] = {
            "create-user": _create_user,
            "create-api-key": _create_api_key,
            "mint-token": _mint_token,
            "rewrap-credentials": _rewrap,
        }
        runner = runners[command]
        try:
            result = asyncio.run(_run(runner(settings, args)))
        except (identity.IdentityError, VaultError, ValueError) as error:
            sys.exit(f"error: {error}")
        print(json.dumps(result))


if __name__ == "__main__":
    main()
