"""The whole platform for end-to-end tests: every service its own process, on real
PostgreSQL, RabbitMQ and gRPC, in a database and vhost of this test session's own, on free
ports, with the LLM blocks answered by a local OpenAI-compatible server."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from agentloom_devkit import resources
from agentloom_devkit.fake_openai import FakeOpenAI
from agentloom_devkit.stack import Ports, Stack, StackConfig

ROOT = Path(__file__).resolve().parents[2]
# The example client and the helpers are plain modules, imported as the tests' own.
sys.path[:0] = [str(ROOT / "examples"), str(Path(__file__).resolve().parent)]

from helpers import User  # noqa: E402
from reference_client import AutoGPTClient  # noqa: E402


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def stack(
    fake_openai: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    config = StackConfig(
        database=resources.unique_name("agentloom_e2e"),
        vhost=resources.unique_name("agentloom_e2e"),
        ports=Ports.free(),
        runners=2,
        log_dir=tmp_path_factory.mktemp("stack-logs"),
        openai_base_url=fake_openai.base_url,
        openai_api_key="sk-test-platform-key",
        extra_env={"AGENTLOOM_NODE_TIMEOUT_S": "20"},
    )
    running = Stack(config)
    try:
        await running.prepare()
        await running.start()
        yield running
    finally:
        running.stop()
        await resources.drop_database(config.database)
        resources.delete_vhost(config.vhost)


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
