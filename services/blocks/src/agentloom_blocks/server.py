"""Wiring of the blocks service: catalog servicer, health, graceful stop."""

from __future__ import annotations

from agentloom.blocks.v1 import blocks_pb2, blocks_pb2_grpc
from agentloom_blocks.registry import load_blocks
from agentloom_blocks.servicer import BlocksServicer
from agentloom_blocks.settings import BlocksSettings
from agentloom_common import process
from agentloom_common.grpc_server import RunningServer, start_server, wait_for_shutdown_signal

SERVICE_NAME = blocks_pb2.DESCRIPTOR.services_by_name["BlocksService"].full_name


async def start(settings: BlocksSettings) -> RunningServer:
    """Start serving on `settings.listen_addr` (port 0 picks a free port)."""
    servicer = BlocksServicer(load_blocks())
    return await start_server(
        [lambda s: blocks_pb2_grpc.add_BlocksServiceServicer_to_server(servicer, s)],
        service_names=[SERVICE_NAME],
        address=settings.listen_addr,
    )


async def serve(settings: BlocksSettings) -> None:
    running = await start(settings)
    process.started()
    await wait_for_shutdown_signal()
    await running.stop(settings.shutdown_grace_s)
