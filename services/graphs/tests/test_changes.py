"""Every change of what GetGraph answers is announced on the bus before its call answers."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import TYPE_CHECKING

import aio_pika
import pytest
from aio_pika.abc import AbstractQueue

from agentloom.graphs.v1 import graphs_pb2
from agentloom_common.bus import GRAPHS_EXCHANGE
from agentloom_common.messages import GraphChanged

if TYPE_CHECKING:
    from agentloom.graphs.v1.graphs_pb2_grpc import GraphsServiceAsyncStub as Stub


def spec(greeting: str = "Hello") -> graphs_pb2.GraphSpec:
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


async def create(graphs: Stub, user_id: str) -> graphs_pb2.Graph:
    reply = await graphs.CreateGraph(graphs_pb2.CreateGraphRequest(user_id=user_id, graph=spec()))
    return reply.graph


@pytest.fixture
async def heard(amqp_url: str, graphs: Stub) -> AsyncIterator[AbstractQueue]:
    """A queue bound as a listener binds it (the graphs server declared the exchange)."""
    connection = await aio_pika.connect(amqp_url)
    channel = await connection.channel()
    queue = await channel.declare_queue(exclusive=True, auto_delete=True)
    await queue.bind(GRAPHS_EXCHANGE)
    yield queue
    await connection.close()


async def announced(queue: AbstractQueue) -> list[GraphChanged]:
    """What the queue holds now: no waiting, the call that changed a graph has answered."""
    found = []
    while (message := await queue.get(no_ack=True, fail=False)) is not None:
        found.append(GraphChanged.model_validate_json(message.body))
    return found


async def test_update_activation_and_deletion_are_announced_before_they_answer(
    graphs: Stub, heard: AbstractQueue, user_id: str
) -> None:
    created = await create(graphs, user_id)
    read = graphs_pb2.GetGraphRequest(user_id=user_id, graph_id=created.id)
    await graphs.GetGraph(read)
    assert await announced(heard) == []  # a new graph and a read change nothing held

    await graphs.UpdateGraph(
        graphs_pb2.UpdateGraphRequest(
            user_id=user_id, graph_id=created.id, graph=spec(greeting="Hi"), expected_version=1
        )
    )
    first = await announced(heard)
    await graphs.SetActiveVersion(
        graphs_pb2.SetActiveVersionRequest(user_id=user_id, graph_id=created.id, version=1)
    )
    second = await announced(heard)
    await graphs.DeleteGraph(graphs_pb2.DeleteGraphRequest(user_id=user_id, graph_id=created.id))
    third = await announced(heard)

    for changes in (first, second, third):
        assert [(c.type, c.user_id, c.graph_id) for c in changes] == [
            ("graph.changed", user_id, created.id)
        ]


async def test_a_refused_change_is_not_announced(
    graphs: Stub, heard: AbstractQueue, user_id: str
) -> None:
    created = await create(graphs, user_id)
    with pytest.raises(Exception):  # noqa: B017 - any refusal: the point is the silence
        await graphs.SetActiveVersion(
            graphs_pb2.SetActiveVersionRequest(user_id=user_id, graph_id=created.id, version=7)
        )
    await asyncio.sleep(0.1)
    assert await announced(heard) == []
