"""Billing test fixtures: the migrated schema, a real server on port 0, a real channel."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, create_async_engine

from agentloom.billing.v1 import billing_pb2_grpc
from agentloom_billing.ledger import check_conservation
from agentloom_billing.server import RunningServer, start
from agentloom_billing.settings import BillingSettings
from agentloom_billing.tables import SCHEMA
from agentloom_common.grpc_client import create_channel
from agentloom_common.migrations import upgrade

STARTING_GRANT = 1000


@pytest.fixture(scope="session")
def grant() -> int:
    """The starting grant of the test server: every new user's first balance."""
    return STARTING_GRANT


@pytest.fixture(scope="session")
async def billing_database_url(database_url: str) -> str:
    """The session database with the billing schema migrated to head."""
    # upgrade() runs its own event loop, so it needs a thread of its own.
    await asyncio.to_thread(upgrade, database_url, "agentloom_billing", SCHEMA)
    return database_url


@pytest.fixture(scope="session")
async def billing_server(billing_database_url: str) -> AsyncIterator[RunningServer]:
    settings = BillingSettings(
        database_url=billing_database_url,
        listen_addr="127.0.0.1:0",
        starting_grant=STARTING_GRANT,
    )
    running = await start(settings)
    yield running
    await running.stop(grace_s=0)


@pytest.fixture(scope="session")
async def billing(
    billing_server: RunningServer,
) -> AsyncIterator[billing_pb2_grpc.BillingServiceAsyncStub]:
    channel = create_channel(f"127.0.0.1:{billing_server.port}", deadline_s=30)
    yield billing_pb2_grpc.BillingServiceStub(channel)
    await channel.close()


@pytest.fixture(scope="session")
async def db(billing_database_url: str) -> AsyncIterator[AsyncEngine]:
    """A separate engine for tests to look at the tables directly."""
    engine = create_async_engine(billing_database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def user_id() -> str:
    return f"user-{uuid.uuid4()}"


@pytest.fixture
async def ledger_balanced(db: AsyncEngine) -> AsyncIterator[None]:
    """After the test: the conservation check finds nothing wrong, for any user."""
    yield
    async with AsyncSession(db) as session:
        assert [str(p) for p in await check_conservation(session)] == []
