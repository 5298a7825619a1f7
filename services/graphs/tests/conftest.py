"""Fixtures of the graphs tests: a migrated database, a real blocks server, a graphs server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import grpc
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from agentloom.graphs.v1 import graphs_pb2_grpc
from agentloom_blocks import server as blocks_server
from agentloom_blocks.catalog import to_proto
from agentloom_blocks.registry import load_blocks
from agentloom_blocks.settings import BlocksSettings
from agentloom_common.db import create_engine, create_session_factory
from agentloom_common.migrations import upgrade
from agentloom_graphs import server as graphs_server
from agentloom_graphs.block_specs import BlockSpec, Catalog
from agentloom_graphs.settings import GraphsSettings


@pytest.fixture(scope="session")
def catalog() -> Catalog:
    """The real block library, as the graphs service sees it."""
    return {block_id: BlockSpec.from_proto(to_proto(b)) for block_id, b in load_blocks().items()}


@pytest.fixture(scope="session")
async def migrated_url(database_url: str) -> str:
    await asyncio.to_thread(upgrade, database_url, "agentloom_graphs", "graphs")
    return database_url


@pytest.fixture(scope="session")
async def engine(migrated_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(migrated_url, pool_size=5)
    yield engine
    await engine.dispose()


@pytest.fixture(scope="session")
def sessions(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return create_session_factory(engine)


@pytest.fixture(scope="session")
async def blocks() -> AsyncIterator[blocks_server.RunningServer]:
    running = await blocks_server.start(BlocksSettings(listen_addr="127.0.0.1:0"))
    yield running
    await running.stop()


@pytest.fixture(scope="session")
async def graphs_running(
    migrated_url: str, amqp_url: str, blocks: blocks_server.RunningServer
) -> AsyncIterator[graphs_server.RunningServer]:
    settings = GraphsSettings(
        listen_addr="127.0.0.1:0",
        database_url=migrated_url,
        amqp_url=amqp_url,
        blocks_addr=f"127.0.0.1:{blocks.port}",
        db_pool_size=5,
    )
    running = await graphs_server.start(settings)
    yield running
    await running.stop()


@pytest.fixture(scope="session")
async def channel(graphs_running: graphs_server.RunningServer) -> AsyncIterator[grpc.aio.Channel]:
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{graphs_running.port}")
    yield channel
    await channel.close()


@pytest.fixture(scope="session")
def graphs(channel: grpc.aio.Channel) -> graphs_pb2_grpc.GraphsServiceAsyncStub:
    return graphs_pb2_grpc.GraphsServiceStub(channel)  # type: ignore[return-value]


@pytest.fixture
def user_id() -> str:
    """A user of this test's own, so tests never see each other's graphs."""
    return f"user-{uuid.uuid4()}"
