"""An idle client connection outlives the common client keep-alive (5 s), so the gateway
never closes one just as a client reuses it (that loses the request with a read error)."""

from __future__ import annotations

import asyncio

import httpx

from agentloom_devkit.stack import Stack


async def test_an_idle_connection_is_still_open_after_the_usual_client_keep_alive(
    stack: Stack,
) -> None:
    peers: list[object] = []

    async def remember_peer(response: httpx.Response) -> None:
        stream = response.extensions["network_stream"]
        peers.append(stream.get_extra_info("client_addr"))

    limits = httpx.Limits(max_connections=1, keepalive_expiry=30)
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, limits=limits, event_hooks={"response": [remember_peer]}
    ) as client:
        first = await client.get("/healthz")
        await asyncio.sleep(6)  # past uvicorn's default of 5 s
        second = await client.get("/healthz")
    assert first.status_code == 200 and second.status_code == 200
    # The same local address: the second request travelled on the first connection.
    assert peers[0] == peers[1]
