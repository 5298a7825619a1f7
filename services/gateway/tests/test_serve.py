"""The gateway as a real process behind uvicorn, and against the real blocks service."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from agentloom_blocks.server import start
from agentloom_blocks.settings import BlocksSettings
from agentloom_gateway.app import create_app
from agentloom_gateway.settings import GatewaySettings


@pytest.fixture(scope="module")
async def server(settings: GatewaySettings) -> AsyncIterator[str]:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    env = {
        **os.environ,
        "AGENTLOOM_DATABASE_URL": settings.database_url,
        "AGENTLOOM_PORT": str(port),
        "AGENTLOOM_BLOCKS_ADDR": settings.blocks_addr,
        "AGENTLOOM_CREDENTIALS_GRPC_ADDR": "127.0.0.1:0",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "agentloom_gateway", "serve", env=env, stderr=asyncio.subprocess.PIPE
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with httpx.AsyncClient(base_url=base) as client:
            for _ in range(100):
                try:
                    if (await client.get("/healthz")).status_code == 200:
                        break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)
            else:
                raise AssertionError("the gateway did not start")
        yield base
    finally:
        process.send_signal(signal.SIGTERM)
        # uvicorn shuts down gracefully, then re-raises the signal it caught.
        assert await asyncio.wait_for(process.wait(), timeout=30) in (0, -signal.SIGTERM)
        assert process.stderr is not None
        logs = (await process.stderr.read()).decode()
        assert "agl_" not in logs  # keys never reach the log


async def test_served_over_http(server: str) -> None:
    async with httpx.AsyncClient(base_url=server) as client:
        health = await client.get("/healthz", headers={"X-Request-ID": "probe-1"})
        assert health.json() == {"status": "ok"}
        assert health.headers["x-request-id"] == "probe-1"
        denied = await client.get("/api/user", headers={"X-API-Key": "agl_" + "x" * 67})
        assert denied.status_code == 401
        assert denied.headers["content-type"] == "application/problem+json"


async def test_a_2_mb_body_is_refused_over_http(server: str) -> None:
    async with httpx.AsyncClient(base_url=server) as client:
        response = await client.post(
            "/api/graphs",
            content=b"[" + b"0," * 1_000_000 + b"0]",
            headers={"Content-Type": "application/json"},
        )
        assert response.status_code == 413
        assert response.json()["code"] == "PAYLOAD_TOO_LARGE"


@pytest.fixture(scope="module")
async def blocks_client(settings: GatewaySettings) -> AsyncIterator[httpx.AsyncClient]:
    blocks = await start(BlocksSettings(listen_addr="127.0.0.1:0"))
    app = create_app(settings.model_copy(update={"blocks_addr": f"127.0.0.1:{blocks.port}"}))
    try:
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://gw") as client:
                yield client
    finally:
        await blocks.stop()


async def test_blocks_come_from_the_blocks_service(
    blocks_client: httpx.AsyncClient, caller: Any
) -> None:
    response = await blocks_client.get("/api/blocks", headers=caller.headers)
    assert response.status_code == 200, response.text
    assert isinstance(response.json(), list)


async def test_an_unknown_block_is_the_services_404(
    blocks_client: httpx.AsyncClient, caller: Any
) -> None:
    response = await blocks_client.get("/api/blocks/no_such_block", headers=caller.headers)
    assert response.status_code == 404
    body = response.json()
    assert body["code"] == "BLOCK_NOT_FOUND"
    assert "no_such_block" in body["detail"]
