"""The notify service. For now it only starts and reports healthy over the gRPC health
protocol; live events (WebSocket, webhooks) are its own issue."""

from __future__ import annotations

from dataclasses import dataclass

import grpc
from grpc_health.v1 import health

from agentloom_common.grpc_server import create_server, graceful_stop, wait_for_shutdown_signal
from agentloom_notify.settings import NotifySettings

SERVICE_NAME = "agentloom.notify.v1.NotifyService"


@dataclass
class RunningServer:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer

    async def stop(self, grace_s: float = 1.0) -> None:
        await graceful_stop(self.server, self.health, grace_s)


async def start(settings: NotifySettings) -> RunningServer:
    server, port, health_servicer = await create_server(
        [], service_names=[SERVICE_NAME], address=settings.listen_addr
    )
    return RunningServer(server, port, health_servicer)


async def serve(settings: NotifySettings) -> None:
    running = await start(settings)
    await wait_for_shutdown_signal()
    await running.stop(settings.shutdown_grace_s)
