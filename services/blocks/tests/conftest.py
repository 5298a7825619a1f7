"""Fixtures for block tests: real local servers (OpenAI-compatible, Anthropic, a customer's
web server, SMTP) and contexts pointing at them."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agentloom_blocks.sdk import BlockContext, PlatformConfig
from agentloom_devkit.fake_anthropic import FakeAnthropic
from agentloom_devkit.fake_openai import FakeOpenAI
from agentloom_devkit.fake_smtp import FakeSmtp
from agentloom_devkit.fake_web import FakeWeb

API_KEY = "sk-test-0123456789abcdef"
ANTHROPIC_KEY = "sk-ant-test-0123456789abcdef"


class InMemoryStore:
    """A test double of the SDK's KeyValueStore protocol (the runner provides the real one)."""

    def __init__(self) -> None:
        self.values: dict[str, Any] = {}

    async def get(self, key: str) -> Any | None:
        return self.values.get(key)

    async def set(self, key: str, value: Any) -> None:
        self.values[key] = value

    async def delete(self, key: str) -> None:
        self.values.pop(key, None)


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture(scope="session")
def fake_anthropic() -> Iterator[FakeAnthropic]:
    with FakeAnthropic() as server:
        yield server


@pytest.fixture(scope="session")
def fake_web() -> Iterator[FakeWeb]:
    with FakeWeb() as server:
        yield server


@pytest.fixture(scope="session")
def fake_smtp() -> Iterator[FakeSmtp]:
    with FakeSmtp() as server:
        yield server


@pytest.fixture
def platform_config(
    fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic, fake_smtp: FakeSmtp
) -> PlatformConfig:
    return PlatformConfig(
        openai_base_url=fake_openai.base_url,
        openai_api_key=API_KEY,
        anthropic_base_url=fake_anthropic.base_url,
        anthropic_api_key=ANTHROPIC_KEY,
        http_timeout_s=5.0,
        smtp_host=fake_smtp.host,
        smtp_port=fake_smtp.port,
        smtp_security="none",
    )


@pytest.fixture
def store() -> InMemoryStore:
    return InMemoryStore()


@pytest.fixture
def context(platform_config: PlatformConfig, store: InMemoryStore) -> BlockContext:
    """A node's context whose platform config points at the local fake servers."""
    return BlockContext(
        user_id="user-1",
        graph_id="graph-1",
        execution_id="execution-1",
        node_id="node-1",
        node_execution_id="node-execution-1",
        config=platform_config,
        store=store,
    )
