"""Fixtures every test folder shares: a fresh database and RabbitMQ vhost per test session."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest

from agentloom_devkit import resources


@pytest.fixture(scope="session")
async def database_url() -> AsyncIterator[str]:
    """A database of this test session's own, dropped at the end. Services migrate into it."""
    name = resources.unique_name("agentloom_test")
    await resources.create_database(name)
    yield resources.database_url(name)
    await resources.drop_database(name)


@pytest.fixture(scope="session")
def amqp_url() -> Iterator[str]:
    """A RabbitMQ vhost of this test session's own, deleted at the end."""
    vhost = resources.unique_name("agentloom_test")
    resources.create_vhost(vhost)
    yield resources.amqp_url(vhost)
    resources.delete_vhost(vhost)
