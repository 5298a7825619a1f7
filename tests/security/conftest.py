"""Security test principals on the session's stack (tests/conftest.py): alice and bob with
API keys, bob again with a JWT, and an admin (JWT and an all-scopes key)."""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import pytest

from agentloom_devkit.stack import Stack


@dataclass(frozen=True)
class Principal:
    user_id: str
    credential: str

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.credential}"}


async def _mint(stack: Stack, subject: str, *role: str) -> Principal:
    args = ["agentloom_gateway", "mint-token", "--user-id", subject, "--ttl", "3600"]
    minted = json.loads(await stack.run_module([*args, *(["--role", *role] if role else [])]))
    return Principal(minted["user_id"], minted["token"])


@pytest.fixture(scope="session")
async def alice(stack: Stack) -> Principal:
    return Principal(*await stack.create_user("alice-sec@example.com", "Alice"))


@pytest.fixture(scope="session")
async def bob(stack: Stack) -> Principal:
    return Principal(*await stack.create_user("bob-sec@example.com", "Bob"))


@pytest.fixture(scope="session")
async def bob_jwt(stack: Stack, bob: Principal) -> Principal:
    return await _mint(stack, bob.user_id)


@pytest.fixture(scope="session")
async def admin(stack: Stack) -> Principal:
    return await _mint(stack, f"admin-{uuid.uuid4().hex[:8]}", "admin")


@pytest.fixture
async def http(stack: Stack) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
        yield client
