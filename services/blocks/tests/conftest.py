"""Fixtures for block tests: a real OpenAI-compatible server and contexts pointing at it."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from agentloom_blocks.sdk import BlockContext, PlatformConfig
from agentloom_devkit.fake_openai import FakeOpenAI

API_KEY = "sk-test-0123456789abcdef"


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAI]:
    with FakeOpenAI() as server:
        yield server


@pytest.fixture
def platform_config(fake_openai: FakeOpenAI) -> PlatformConfig:
    return PlatformConfig(
        openai_base_url=fake_openai.base_url, openai_api_key=API_KEY, http_timeout_s=5.0
    )


@pytest.fixture
def context(platform_config: PlatformConfig) -> BlockContext:
    """A node's context whose platform config points at the fake OpenAI server."""
    return BlockContext(
        user_id="user-1",
        graph_id="graph-1",
        execution_id="execution-1",
        node_id="node-1",
        node_execution_id="node-execution-1",
        config=platform_config,
    )
