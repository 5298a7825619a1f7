"""Live events over WebSocket, through the gateway's `/ws`, with real clients (`websockets`):
order, replay after a forced disconnect with no gap and no duplicate, isolation between
users, slow clients cut off."""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import os
import socket
from typing import Any

import pytest
from helpers import User, graph, link, node
from reference_client import AutoGPTClient
from websockets.asyncio.client import ClientConnection, connect
from websockets.client import ClientProtocol
from websockets.exceptions import ConnectionClosed
from websockets.frames import Frame
from websockets.protocol import State
from websockets.uri import parse_uri

from agentloom_devkit.stack import Stack
from agentloom_notify import server as notify_server
from agentloom_notify.settings import NotifySettings

TERMINAL = {"COMPLETED", "FAILED", "CANCELLED"}


def ws_url(stack: Stack) -> str:
    return stack.gateway_url.replace("http://", "ws://") + "/ws"


async def open_ws(stack: Stack, api_key: str, **options: Any) -> ClientConnection:
    return await connect(
        ws_url(stack), additional_headers={"Authorization": f"Bearer {api_key}"}, **options
    )


async def next_message(ws: ClientConnection, timeout_s: float = 15) -> dict[str, Any]:
    """The next message that is not a heartbeat."""
    while True:
        message = json.loads(await asyncio.wait_for(ws.recv(), timeout_s))
        if message["type"] != "heartbeat":
            return dict(message)


async def subscribe(ws: ClientConnection, **target: Any) -> None:
    await ws.send(json.dumps({"type": "subscribe", **target}))
    reply = await next_message(ws)
    assert reply["type"] == "subscribed", reply


async def events_until_terminal(
    ws: ClientConnection, execution_id: str, timeout_s: float = 30
) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        message = await next_message(ws, max(0.1, deadline - loop.time()))
        assert message["type"] == "event", message
        event = message["event"]
        if event["graph_exec_id"] != execution_id:
            continue
        events.append(event)
        if event["type"] == "execution.status" and event["data"]["status"] in TERMINAL:
            return events


def chain(name: str, length: int, *, step: str = "pass_through_block") -> dict[str, Any]:
    nodes = [node("in", "text_input_block", name="text")]
    links = []
    previous, pin = "in", "text"
    for index in range(length):
        extra = {"seconds": 0.15} if step == "wait_block" else {}
        nodes.append(node(f"n{index}", step, **extra))
        links.append(link(previous, pin, f"n{index}", "value"))
        previous, pin = f"n{index}", "value"
    nodes.append(node("out", "output_block", name="result"))
    links.append(link(previous, pin, "out", "value"))
    return graph(name, nodes, links)


async def test_a_graph_subscription_sees_every_event_in_order(
    stack: Stack, client: AutoGPTClient, alice: User
) -> None:
    created = await client.create_graph(chain("live-order", 4))
    async with await open_ws(stack, alice.api_key) as ws:
        await subscribe(ws, graph_id=created["id"])
        execution = await client.execute_graph(created["id"], {"text": "hello"})
        events = await events_until_terminal(ws, execution["id"])

    assert [event["seq"] for event in events] == list(range(1, len(events) + 1))
    assert events[-1]["data"]["status"] == "COMPLETED"
    statuses = [e["data"]["status"] for e in events if e["type"] == "execution.status"]
    assert statuses == ["QUEUED", "RUNNING", "COMPLETED"]
    outputs = {
        e["data"]["node_id"]: e["data"]["value"] for e in events if e["type"] == "node.output"
    }
    assert outputs["n3"] == "hello" and outputs["out"] == "hello"
    # Each node: RUNNING, its outputs, then COMPLETED, in that order.
    for node_id in ("n0", "n1", "n2", "n3"):
        kinds = [
            e["data"]["status"] if e["type"] == "node.status" else "output"
            for e in events
            if e["data"].get("node_id") == node_id
        ]
        assert [k for k in kinds if k not in ("INCOMPLETE", "QUEUED")] == [
            "RUNNING",
            "output",
            "COMPLETED",
        ], kinds
    # The pushed events are the execution's record: the same as a full replay.
    async with await open_ws(stack, alice.api_key) as ws:
        await subscribe(ws, graph_exec_id=execution["id"], last_seq=0)
        assert await events_until_terminal(ws, execution["id"]) == events


async def test_reconnecting_with_the_last_seq_resumes_without_gap_or_duplicate(
    stack: Stack, client: AutoGPTClient, alice: User
) -> None:
    created = await client.create_graph(chain("live-resume", 8, step="wait_block"))
    execution = await client.execute_graph(created["id"], {"text": "x"})
    seen: list[dict[str, Any]] = []
    async with await open_ws(stack, alice.api_key) as ws:
        await subscribe(ws, graph_exec_id=execution["id"], last_seq=0)
        while len(seen) < 6:
            message = await next_message(ws)
            seen.append(message["event"])
        # A forced disconnect: the TCP connection drops, no close handshake.
        ws.transport.abort()

    last_seq = seen[-1]["seq"]
    async with await open_ws(stack, alice.api_key) as ws:
        await subscribe(ws, graph_exec_id=execution["id"], last_seq=last_seq)
        rest = await events_until_terminal(ws, execution["id"])

    everything = seen + rest
    assert [event["seq"] for event in everything] == list(range(1, len(everything) + 1))
    assert everything[-1]["data"]["status"] == "COMPLETED"
    # Some of the rest happened while disconnected, some live after the reconnect.
    assert len(rest) > 10


async def test_no_user_receives_another_users_events(
    stack: Stack, client: AutoGPTClient, alice: User, bob: User
) -> None:
    created = await client.create_graph(chain("live-private", 2))
    async with (
        await open_ws(stack, alice.api_key) as mine,
        await open_ws(stack, bob.api_key) as theirs,
    ):
        await subscribe(mine, graph_id=created["id"])
        # Bob may ask for Alice's graph id: it is only ever matched against his own events.
        await subscribe(theirs, graph_id=created["id"])
        execution = await client.execute_graph(created["id"], {"text": "secret-ish"})
        await theirs.send(
            json.dumps({"type": "subscribe", "graph_exec_id": execution["id"], "last_seq": 0})
        )
        refused = await next_message(theirs)
        assert refused["type"] == "error" and refused["field"] == "graph_exec_id"
        events = await events_until_terminal(mine, execution["id"])
        assert events and all(event["user_id"] == alice.user_id for event in events)
        # Everything Alice got has been pushed; Bob got none of it.
        await theirs.send(json.dumps({"type": "ping"}))
        assert await next_message(theirs) == {"type": "pong"}


async def test_credentials_and_messages_are_checked(stack: Stack, alice: User) -> None:
    async with await open_ws(stack, "agl_not_a_real_key") as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    async with await connect(ws_url(stack)) as ws:
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4401
    # Browsers cannot set headers: the token may come as a query parameter.
    async with await connect(f"{ws_url(stack)}?token={alice.api_key}") as ws:
        for bad, field in (
            ("not json", "message"),
            ({"type": "dance"}, "type"),
            ({"type": "subscribe"}, "graph_exec_id"),
            ({"type": "subscribe", "graph_exec_id": "x", "last_seq": -1}, "last_seq"),
            ({"type": "subscribe", "graph_exec_id": "no-such-execution"}, "graph_exec_id"),
        ):
            await ws.send(bad if isinstance(bad, str) else json.dumps(bad))
            reply = await next_message(ws)
            assert reply["type"] == "error" and reply["field"] == field, (bad, reply)


def _cut_offs(stack: Stack) -> int:
    """How many slow clients notify has cut off so far (its log says each one)."""
    return stack.log_tail("notify", 10_000_000).count("cutting off a slow client")


async def test_a_client_that_does_not_read_is_cut_off(
    stack: Stack, client: AutoGPTClient, alice: User
) -> None:
    """Megabytes of events towards a client that reads nothing: the connection is closed
    (4008) once the kernel buffers are full, instead of the platform buffering the rest.

    The client is the `websockets` sans-I/O protocol over a plain socket with a tiny fixed
    receive window, so that nothing on the client side reads ahead."""
    created = await client.create_graph(chain("live-slow", 12))
    # Incompressible: a deflate-compressed hop would otherwise carry it in a few bytes.
    big = base64.b64encode(os.urandom(187_500)).decode()
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    sock.connect(("127.0.0.1", stack.config.ports.gateway))
    reader, writer = await asyncio.open_connection(sock=sock, limit=4096)
    protocol = ClientProtocol(parse_uri(ws_url(stack)), max_size=None)
    request = protocol.connect()
    request.headers["Authorization"] = f"Bearer {alice.api_key}"
    protocol.send_request(request)
    writer.write(b"".join(protocol.data_to_send()))
    while protocol.state is not State.OPEN:
        protocol.receive_data(await asyncio.wait_for(reader.read(4096), 10))
        assert protocol.handshake_exc is None, protocol.handshake_exc
    protocol.send_text(json.dumps({"type": "subscribe", "graph_id": created["id"]}).encode())
    writer.write(b"".join(protocol.data_to_send()))

    cut_before = _cut_offs(stack)
    executions = [await client.execute_graph(created["id"], {"text": big}) for _ in range(3)]
    for execution in executions:
        await client.wait(execution["id"], timeout_s=120)
    produced = 3 * 12 * 2 * len(big)  # each step's RUNNING inputs and its output
    # Events reach notify after the executions end (under load, seconds after): reading
    # before notify has cut the client off would make it a client that reads.
    deadline = asyncio.get_running_loop().time() + 60
    while _cut_offs(stack) == cut_before:
        assert asyncio.get_running_loop().time() < deadline, "the client was never cut off"
        await asyncio.sleep(0.1)

    # Now read: what was buffered, then the close.
    received = 0
    while protocol.close_rcvd is None:
        data = await asyncio.wait_for(reader.read(65_536), 30)
        if not data:
            break
        protocol.receive_data(data)
        for event in protocol.events_received():
            if isinstance(event, Frame):
                received += len(event.data)
        writer.write(b"".join(protocol.data_to_send()))  # pongs, and the closing handshake
    writer.close()
    with contextlib.suppress(OSError):
        await writer.wait_closed()
    assert protocol.close_rcvd is not None, "the connection ended without a close frame"
    assert protocol.close_rcvd.code == 4008, protocol.close_rcvd
    assert received < produced / 2, (received, produced)


async def test_clients_of_two_notify_replicas_both_get_every_event(
    stack: Stack, client: AutoGPTClient, alice: User
) -> None:
    """A second notify replica shares the bus queue with the stack's: each event is taken by
    one of them and fanned out through Redis, so a client of either sees all of them."""
    env = stack.env()
    replica = await notify_server.start(
        NotifySettings(
            listen_addr="127.0.0.1:0",
            ws_port=0,
            database_url=env["AGENTLOOM_DATABASE_URL"],
            amqp_url=env["AGENTLOOM_AMQP_URL"],
            executor_addr=env["AGENTLOOM_EXECUTOR_ADDR"],
            internal_token=env["AGENTLOOM_INTERNAL_TOKEN"],
            events_channel_prefix=env["AGENTLOOM_EVENTS_CHANNEL_PREFIX"],
        )
    )
    try:
        created = await client.create_graph(chain("live-replicas", 6))
        replica_url = f"ws://127.0.0.1:{replica.ws_port}"
        headers = {
            "x-agentloom-user-id": alice.user_id,
            "x-agentloom-internal-token": env["AGENTLOOM_INTERNAL_TOKEN"],
        }
        async with (
            await open_ws(stack, alice.api_key) as through_gateway,
            await connect(replica_url, additional_headers=headers) as direct,
        ):
            await subscribe(through_gateway, graph_id=created["id"])
            await subscribe(direct, graph_id=created["id"])
            for _ in range(3):
                run = await client.execute_graph(created["id"], {"text": "r"})
                one = await events_until_terminal(through_gateway, run["id"])
                other = await events_until_terminal(direct, run["id"])
                assert one == other
                assert [event["seq"] for event in one] == list(range(1, len(one) + 1))
    finally:
        await replica.stop(0.5)
