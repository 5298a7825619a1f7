"""Wiring of the graphs service: database, block catalog client, servicer, health, stop."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from aio_pika.abc import AbstractRobustConnection
from grpc_health.v1 import health
from sqlalchemy.ext.asyncio import AsyncEngine

from agentloom.graphs.v1 import graphs_pb2, graphs_pb2_grpc, presets_pb2, presets_pb2_grpc
from agentloom_common import bus, process
from agentloom_common.db import create_engine, create_session_factory, warm_pool
from agentloom_common.grpc_client import create_channel
from agentloom_common.grpc_server import create_server, graceful_stop, wait_for_shutdown_signal
from agentloom_graphs.catalog_client import CatalogClient
from agentloom_graphs.changes import GraphChanges
from agentloom_graphs.preset_servicer import PresetServicer
from agentloom_graphs.servicer import GraphsServicer
from agentloom_graphs.settings import GraphsSettings

SERVICE_NAME = graphs_pb2.DESCRIPTOR.services_by_name["GraphsService"].full_name
PRESETS_SERVICE_NAME = presets_pb2.DESCRIPTOR.services_by_name["PresetService"].full_name


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    engine: AsyncEngine
    blocks_channel: grpc.aio.Channel
    bus_connection: AbstractRobustConnection

    async def stop(self, grace_s: float = 1.0) -> None:
        """Finish in-flight calls, then release the database pool, the blocks channel and
        the bus connection."""
        await graceful_stop(self.server, self.health, grace_s)
        await self.blocks_channel.close()
        await self.bus_connection.close()
        await self.engine.dispose()


async def start(settings: GraphsSettings) -> RunningServer:
    """Start serving on `settings.listen_addr` (port 0 picks a free port).

    The database must already be migrated (`python -m agentloom_graphs migrate`).
    """
    engine = create_engine(settings.database_url, pool_size=settings.db_pool_size)
    await warm_pool(engine)
    connection = await bus.connect(settings.amqp_url)
    async with connection.channel() as channel:
        await bus.declare_graphs_exchange(channel)
    publisher = bus.Publisher(connection)
    await publisher.start()
    changes = GraphChanges(publisher, timeout_s=settings.announce_timeout_s)
    channel = create_channel(settings.blocks_addr, deadline_s=settings.grpc_deadline_s)
    catalog = CatalogClient(
        channel,
        ttl_s=settings.catalog_ttl_s,
        max_stale_s=settings.catalog_max_stale_s,
        deadline_s=settings.grpc_deadline_s,
    )
    sessions = create_session_factory(engine)
    servicer = GraphsServicer(sessions, catalog, changes)
    presets = PresetServicer(sessions)
    try:
        server, port, health_servicer = await create_server(
            [
                lambda s: graphs_pb2_grpc.add_GraphsServiceServicer_to_server(servicer, s),
                lambda s: presets_pb2_grpc.add_PresetServiceServicer_to_server(presets, s),
            ],
            service_names=[SERVICE_NAME, PRESETS_SERVICE_NAME],
            address=settings.listen_addr,
        )
    except BaseException:
        await channel.close()
        await connection.close()
        await engine.dispose()
        raise
    return RunningServer(server, port, health_servicer, engine, channel, connection)


async def serve(settings: GraphsSettings) -> None:
    """Serve until SIGTERM or SIGINT, then stop gracefully."""
    running = await start(settings)
    process.started()
    await wait_for_shutdown_signal()
    await running.stop(settings.shutdown_grace_s)
