"""The executions API runs a graph version it holds without asking the graphs service again,
until the graphs service announces a change of that graph (graph_versions.py)."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator, Callable

import grpc
import pytest

from agentloom.graphs.v1 import graphs_pb2, graphs_pb2_grpc
from agentloom_blocks import server as blocks_server
from agentloom_blocks.settings import BlocksSettings
from agentloom_common import bus
from agentloom_common.migrations import upgrade
from agentloom_executor.graph_versions import GraphVersions
from agentloom_graphs import server as graphs_server
from agentloom_graphs.settings import GraphsSettings


@pytest.fixture(scope="module")
async def graphs(
    database_url: str, amqp_url: str
) -> AsyncIterator[graphs_pb2_grpc.GraphsServiceStub]:
    await asyncio.to_thread(upgrade, database_url, "agentloom_graphs", "graphs")
    blocks = await blocks_server.start(BlocksSettings(listen_addr="127.0.0.1:0"))
    running = await graphs_server.start(
        GraphsSettings(
            listen_addr="127.0.0.1:0",
            database_url=database_url,
            amqp_url=amqp_url,
            blocks_addr=f"127.0.0.1:{blocks.port}",
        )
    )
    channel = grpc.aio.insecure_channel(f"127.0.0.1:{running.port}")
    yield graphs_pb2_grpc.GraphsServiceStub(channel)
    await channel.close()
    await running.stop(grace_s=0)
    await blocks.stop()


@pytest.fixture
async def listening(
    amqp_url: str, graphs: graphs_pb2_grpc.GraphsServiceStub
) -> AsyncIterator[Callable[..., asyncio.Future[GraphVersions]]]:
    connections = []

    async def make(trust_s: float = 60.0) -> GraphVersions:
        connection = await bus.connect(amqp_url)
        connections.append(connection)
        versions = GraphVersions(graphs, trust_s=trust_s)
        await versions.listen(connection)
        return versions

    yield make  # type: ignore[misc]
    for connection in connections:
        await connection.close()


def spec(greeting: str) -> graphs_pb2.GraphSpec:
    def node(node_id: str, block_id: str, **defaults: str) -> graphs_pb2.Node:
        return graphs_pb2.Node(
            id=node_id, block_id=block_id, input_default_json=json.dumps(defaults)
        )

    return graphs_pb2.GraphSpec(
        name="Greeter",
        nodes=[
            node("in", "text_input_block", name="who"),
            node("fmt", "text_template_block", template=greeting + " {{ who }}"),
            node("out", "output_block", name="greeting"),
        ],
        links=[
            graphs_pb2.Link(source_id="in", source_name="text", sink_id="fmt", sink_name="who"),
            graphs_pb2.Link(source_id="fmt", source_name="text", sink_id="out", sink_name="value"),
        ],
    )


def template_of(found: object) -> str:
    nodes = found.snapshot_json["nodes"]  # type: ignore[attr-defined]
    return next(n["input_default"]["template"] for n in nodes if n["id"] == "fmt")


async def heard_of(versions: GraphVersions, changes_before: int) -> None:
    for _ in range(500):
        if versions._changes != changes_before:
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the change was not heard in 5 s")


async def test_a_version_held_runs_again_without_asking_until_its_graph_changes(
    graphs: graphs_pb2_grpc.GraphsServiceStub,
    listening: Callable[..., asyncio.Future[GraphVersions]],
) -> None:
    versions = await listening()
    user = f"user-{uuid.uuid4()}"
    other = (
        await graphs.CreateGraph(graphs_pb2.CreateGraphRequest(user_id=user, graph=spec("Yo")))
    ).graph
    created = (
        await graphs.CreateGraph(graphs_pb2.CreateGraphRequest(user_id=user, graph=spec("Hi")))
    ).graph

    first = await versions.get(user, created.id, 0)
    again = await versions.get(user, created.id, 0)
    assert (first.version, template_of(first), versions.asked) == (1, "Hi {{ who }}", 1)
    assert again is first and versions.asked == 1
    await versions.get(user, other.id, 0)

    before = versions._changes
    await graphs.UpdateGraph(
        graphs_pb2.UpdateGraphRequest(
            user_id=user, graph_id=created.id, graph=spec("Hello"), expected_version=1
        )
    )
    await heard_of(versions, before)
    updated = await versions.get(user, created.id, 0)
    assert (updated.version, template_of(updated), versions.asked) == (2, "Hello {{ who }}", 3)
    # Another graph's change does not touch what is held of this one.
    assert (await versions.get(user, other.id, 0)).version == 1 and versions.asked == 3

    before = versions._changes
    await graphs.SetActiveVersion(
        graphs_pb2.SetActiveVersionRequest(user_id=user, graph_id=created.id, version=1)
    )
    await heard_of(versions, before)
    assert (await versions.get(user, created.id, 0)).version == 1
    pinned = await versions.get(user, created.id, 2)
    assert pinned.version == 2 and versions.asked == 5

    before = versions._changes
    await graphs.DeleteGraph(graphs_pb2.DeleteGraphRequest(user_id=user, graph_id=created.id))
    await heard_of(versions, before)
    for version in (0, 2):
        with pytest.raises(grpc.aio.AioRpcError) as gone:
            await versions.get(user, created.id, version)
        assert gone.value.code() == grpc.StatusCode.NOT_FOUND


async def test_without_the_bus_or_after_the_trust_window_it_asks_every_time(
    graphs: graphs_pb2_grpc.GraphsServiceStub,
    listening: Callable[..., asyncio.Future[GraphVersions]],
    amqp_url: str,
) -> None:
    user = f"user-{uuid.uuid4()}"
    created = (
        await graphs.CreateGraph(graphs_pb2.CreateGraphRequest(user_id=user, graph=spec("Hi")))
    ).graph

    never_listening = GraphVersions(graphs, trust_s=60)
    for _ in range(3):
        await never_listening.get(user, created.id, 0)
    assert never_listening.asked == 3

    briefly = await listening(trust_s=0.2)
    await briefly.get(user, created.id, 0)
    await briefly.get(user, created.id, 0)
    assert briefly.asked == 1
    await asyncio.sleep(0.3)
    await briefly.get(user, created.id, 0)
    assert briefly.asked == 2

    cut_off = await listening()
    await cut_off.get(user, created.id, 0)
    assert cut_off._connection is not None
    await cut_off._connection.close()
    await cut_off.get(user, created.id, 0)
    await cut_off.get(user, created.id, 0)
    assert cut_off.asked == 3


async def test_a_question_in_flight_when_a_change_is_heard_is_not_trusted(
    graphs: graphs_pb2_grpc.GraphsServiceStub,
    listening: Callable[..., asyncio.Future[GraphVersions]],
) -> None:
    versions = await listening()
    user = f"user-{uuid.uuid4()}"
    created = (
        await graphs.CreateGraph(graphs_pb2.CreateGraphRequest(user_id=user, graph=spec("Hi")))
    ).graph
    asking = asyncio.ensure_future(versions.get(user, created.id, 0))
    await asyncio.sleep(0)  # the question is asked, its answer not back
    assert versions.asked == 1 and not asking.done()
    versions.forget(created.id)  # heard while the question is on its way
    assert (await asking).version == 1
    await versions.get(user, created.id, 0)
    assert versions.asked == 2


async def test_callers_wanting_the_same_version_share_one_question(
    graphs: graphs_pb2_grpc.GraphsServiceStub,
    listening: Callable[..., asyncio.Future[GraphVersions]],
) -> None:
    versions = await listening()
    user = f"user-{uuid.uuid4()}"
    created = (
        await graphs.CreateGraph(graphs_pb2.CreateGraphRequest(user_id=user, graph=spec("Hi")))
    ).graph
    found = await asyncio.gather(*(versions.get(user, created.id, 0) for _ in range(10)))
    assert versions.asked == 1 and all(one is found[0] for one in found)

    # A caller arriving after a change was heard does not join the question on its way.
    versions.forget(created.id)
    first = asyncio.ensure_future(versions.get(user, created.id, 0))
    await asyncio.sleep(0)
    versions.forget(created.id)
    second = asyncio.ensure_future(versions.get(user, created.id, 0))
    await asyncio.gather(first, second)
    assert versions.asked == 3

    # One caller giving up does not cancel the question for the others.
    versions.forget(created.id)
    quitter = asyncio.ensure_future(versions.get(user, created.id, 0))
    stayer = asyncio.ensure_future(versions.get(user, created.id, 0))
    await asyncio.sleep(0)
    quitter.cancel()
    assert (await stayer).version == 1 and versions.asked == 4
