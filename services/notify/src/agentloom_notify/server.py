"""The notify service. For now it only starts and reports healthy over the gRPC health
protocol; live events (WebSocket, webhooks) are its own issue."""

from __future__ import annotations

from agentloom_common.grpc_server import RunningServer, start_server, wait_for_shutdown_signal
from agentloom_notify.settings import NotifySettings

SERVICE_NAME = "agentloom.notify.v1.NotifyService"


async def start(settings: NotifySettings) -> RunningServer:
    return await start_server([], service_names=[SERVICE_NAME], address=settings.listen_addr)


async def serve(settings: NotifySettings) -> None:
    running = await start(settings)
    await wait_for_shutdown_signal()
    await running.stop(settings.shutdown_grace_s)
