"""`python -m agentloom_gateway [serve|migrate|create-user|create-api-key]`."""

from __future__ import annotations

import argparse
import asyncio
import json
import sys
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import uvicorn

from agentloom_common.db import create_engine, create_session_factory
from agentloom_common.logging import setup_logging
from agentloom_common.migrations import upgrade
from agentloom_gateway import identity
from agentloom_gateway.app import create_app
from agentloom_gateway.settings import GatewaySettings
from agentloom_gateway.tables import SCHEMA


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
            )
        return {"api_key": created.api_key, "id": str(created.id)}
    finally:
        await engine.dispose()


def main(argv: Sequence[str] | None = None) -> None:
    args = _parser().parse_args(argv)
    settings = GatewaySettings()
    setup_logging("gateway", settings.log_level)
    command = args.command or "serve"
    if command == "serve":
        uvicorn.run(
            create_app(settings),
            host=settings.host,
            port=settings.port,
            log_config=None,
            timeout_graceful_shutdown=int(settings.shutdown_grace_s),
        )
    elif command == "migrate":
        upgrade(settings.database_url, "agentloom_gateway", SCHEMA)
    else:
        runner = _create_user if command == "create-user" else _create_api_key
        try:
            result = asyncio.run(runner(settings, args))
        except (identity.IdentityError, ValueError) as error:
            sys.exit(f"error: {error}")
        print(json.dumps(result))


if __name__ == "__main__":
    main()
