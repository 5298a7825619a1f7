"""Isolated resources on the shared local servers: a database and a RabbitMQ vhost of one's own.

Tests and the dev launcher use these so that a test run never touches a running dev stack
(or another test run): each gets fresh names, and drops them when done.
"""

from __future__ import annotations

import subprocess
import uuid

import asyncpg

ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


def unique_name(prefix: str) -> str:
    return f"{prefix}_{uuid.uuid4().hex[:10]}"


async def create_database(name: str, admin_dsn: str = ADMIN_DSN) -> None:
    connection = await asyncpg.connect(admin_dsn)
    try:
        exists = await connection.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", name)
        if not exists:
            await connection.execute(f'CREATE DATABASE "{name}"')
    finally:
        await connection.close()


async def drop_database(name: str, admin_dsn: str = ADMIN_DSN) -> None:
    connection = await asyncpg.connect(admin_dsn)
    try:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await connection.close()


def database_url(name: str, host: str = "127.0.0.1", port: int = 5432) -> str:
    return f"postgresql+asyncpg://postgres@{host}:{port}/{name}"


def _rabbitmqctl(*args: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def create_vhost(name: str, user: str = "guest") -> None:
    """Create a vhost (idempotent) and give `user` every permission on it (needs root)."""
    if not vhost_exists(name):
        _rabbitmqctl("add_vhost", name)
    _rabbitmqctl("set_permissions", "-p", name, user, ".*", ".*", ".*")


def vhost_exists(name: str) -> bool:
    result = subprocess.run(
        ["rabbitmqctl", "-q", "list_vhosts", "name"], check=True, capture_output=True, text=True
    )
    return name in result.stdout.split()


def delete_vhost(name: str) -> None:
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", name], capture_output=True, timeout=60)


def amqp_url(vhost: str, host: str = "127.0.0.1", port: int = 5672) -> str:
    return f"amqp://guest:guest@{host}:{port}/{vhost}"
