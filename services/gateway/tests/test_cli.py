"""`python -m agentloom_gateway` commands, run as the dev launcher and operators run them."""

from __future__ import annotations

import asyncio
import json
import os
import sys
import uuid

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentloom_gateway import identity
from agentloom_gateway.settings import GatewaySettings


async def run_cli(settings: GatewaySettings, *args: str) -> tuple[int, str, str]:
    env = {
        **os.environ,
        "AGENTLOOM_DATABASE_URL": settings.database_url,
        "AGENTLOOM_API_KEY_PEPPER": settings.api_key_pepper.get_secret_value(),
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agentloom_gateway",
        *args,
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await asyncio.wait_for(process.communicate(), timeout=60)
    assert process.returncode is not None
    return process.returncode, out.decode(), err.decode()


async def test_migrate_is_idempotent(settings: GatewaySettings) -> None:
    code, _, err = await run_cli(settings, "migrate")
    assert code == 0, err


async def test_create_user_then_api_key(
    settings: GatewaySettings, sessions: async_sessionmaker[AsyncSession], pepper: bytes
) -> None:
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    code, out, err = await run_cli(
        settings, "create-user", "--email", email, "--name", "Demo", "--role", "admin"
    )
    assert code == 0, err
    user_id = json.loads(out)["user_id"]

    code, out, err = await run_cli(settings, "create-api-key", "--user-id", user_id, "--name", "d")
    assert code == 0, err
    created = json.loads(out)
    assert set(created) == {"api_key", "id"}
    assert created["api_key"] not in err

    async with sessions.begin() as session:
        user = await identity.get_user(session=session, user_id=user_id)
        record = await identity.verify_api_key(
            session=session, api_key=created["api_key"], pepper=pepper
        )
    assert user is not None and user.role == "admin"
    assert record is not None and str(record.id) == created["id"]


async def test_create_user_refuses_a_taken_email(settings: GatewaySettings) -> None:
    email = f"{uuid.uuid4().hex[:10]}@example.com"
    assert (await run_cli(settings, "create-user", "--email", email, "--name", "A"))[0] == 0
    code, out, err = await run_cli(settings, "create-user", "--email", email, "--name", "B")
    assert code == 1 and out == ""
    assert "already exists" in err


async def test_create_api_key_refuses_an_unknown_user(settings: GatewaySettings) -> None:
    for user_id in (str(uuid.uuid4()), "not-a-uuid"):
        code, out, err = await run_cli(
            settings, "create-api-key", "--user-id", user_id, "--name", "x"
        )
        assert code == 1 and out == "", err
