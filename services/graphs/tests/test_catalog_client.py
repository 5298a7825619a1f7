"""The block catalog client, against real gRPC servers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
import pytest
from grpc_health.v1 import health

from agentloom.blocks.v1 import blocks_pb2, blocks_pb2_grpc
from agentloom_blocks import server as blocks_server
from agentloom_blocks.settings import BlocksSettings
from agentloom_common.errors import Unavailable
from agentloom_common.grpc_client import create_channel
from agentloom_common.grpc_server import create_server
from agentloom_graphs.catalog_client import CatalogClient


class CountingBlocks(blocks_pb2_grpc.BlocksServiceServicer):
    """A blocks service serving fixed entries, counting how often it is asked."""

    def __init__(self, blocks: list[blocks_pb2.Block]) -> None:
        self.blocks = blocks
        self.calls = 0

    async def ListBlocks(
        self, request: blocks_pb2.ListBlocksRequest, context: grpc.aio.ServicerContext
    ) -> blocks_pb2.ListBlocksResponse:
        self.calls += 1
        await asyncio.sleep(0.05)  # long enough for concurrent callers to pile up
        return blocks_pb2.ListBlocksResponse(blocks=self.blocks)


@dataclass
class Served:
    servicer: CountingBlocks
    server: grpc.aio.Server
    health: health.aio.HealthServicer
    port: int


@pytest.fixture
async def counting() -> AsyncIterator[Served]:
    servicer = CountingBlocks(
        [
            blocks_pb2.Block(id="good", input_schema_json=json.dumps({"properties": {"x": {}}})),
            blocks_pb2.Block(id="broken", input_schema_json="[1]"),
        ]
    )
    server, port, health_servicer = await create_server(
        [lambda s: blocks_pb2_grpc.add_BlocksServiceServicer_to_server(servicer, s)],
        service_names=[],
        address="127.0.0.1:0",
    )
    yield Served(servicer, server, health_servicer, port)
    await server.stop(0)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


async def test_catalog_is_fetched_once_per_ttl_and_shared_by_concurrent_callers(
    counting: Served,
) -> None:
    clock = Clock()
    channel = create_channel(f"127.0.0.1:{counting.port}", deadline_s=2)
    client = CatalogClient(channel, ttl_s=30, max_stale_s=600, deadline_s=2, clock=clock)

    first = await asyncio.gather(*(client.get() for _ in range(10)))
    clock.now += 29
    again = await client.get()
    clock.now += 2
    refreshed = await client.get()
    await channel.close()

    assert counting.servicer.calls == 2
    assert all(c is first[0] for c in [*first, again])
    assert refreshed is not again and set(refreshed) == {"good"}  # the broken entry is skipped
    assert refreshed["good"].input_pins == {"x"}


async def test_last_catalog_serves_while_the_blocks_service_is_down_then_gives_up() -> None:
    running = await blocks_server.start(BlocksSettings(listen_addr="127.0.0.1:0"))
    clock = Clock()
    channel = create_channel(f"127.0.0.1:{running.port}", deadline_s=1)
    client = CatalogClient(channel, ttl_s=10, max_stale_s=100, deadline_s=1, clock=clock)
    fetched = await client.get()
    await running.stop(0)

    clock.now += 50
    stale = await client.get()
    clock.now += 51
    with pytest.raises(Unavailable) as raised:
        await client.get()
    await channel.close()

    assert stale is fetched and "output_block" in stale
    assert raised.value.reason == "BLOCK_CATALOG_UNAVAILABLE"


async def test_no_catalog_at_all_is_unavailable() -> None:
    channel = create_channel("127.0.0.1:1", deadline_s=1)
    client = CatalogClient(channel, ttl_s=10, max_stale_s=100, deadline_s=1)

    with pytest.raises(Unavailable):
        await client.get()
    await channel.close()
