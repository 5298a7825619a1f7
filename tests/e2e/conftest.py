"""End-to-end fixtures: users with API keys, and the reference example client, on the
session's stack (tests/conftest.py)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from agentloom_devkit.stack import Stack

ROOT = Path(__file__).resolve().parents[2]
# The example client and the helpers are plain modules, imported as the tests' own.
sys.path[:0] = [str(ROOT / "examples"), str(Path(__file__).resolve().parent)]

from helpers import User  # noqa: E402
from reference_client import AutoGPTClient  # noqa: E402


@pytest.fixture(scope="session")
async def alice(stack: Stack) -> User:
    return User(*await stack.create_user("alice@example.com", "Alice"))


@pytest.fixture(scope="session")
async def bob(stack: Stack) -> User:
    return User(*await stack.create_user("bob@example.com", "Bob"))


@pytest.fixture
async def client(stack: Stack, alice: User) -> AsyncIterator[AutoGPTClient]:
    reference = AutoGPTClient(base_url=stack.gateway_url, api_key=alice.api_key)
    yield reference
    await reference.aclose()
