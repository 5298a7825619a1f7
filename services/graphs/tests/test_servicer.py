"""The graphs service through a real gRPC channel, with a real blocks service behind it."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from agentloom.graphs.v1 import graphs_pb2, graphs_pb2_grpc
from agentloom_common.errors import error_info
from agentloom_graphs import server as graphs_server
from agentloom_graphs.block_specs import Catalog
from agentloom_graphs.settings import GraphsSettings

if TYPE_CHECKING:
    from agentloom.graphs.v1.graphs_pb2_grpc import GraphsServiceAsyncStub as Stub


def node(node_id: str, block_id: str, **input_default: Any) -> graphs_pb2.Node:
    return graphs_pb2.Node(
        id=node_id,
        block_id=block_id,
        input_default_json=json.dumps(input_default),
        metadata_json=json.dumps({"position": {"x": 1, "y": 2}}),
    )


def link(source: str, source_name: str, sink: str, sink_name: str) -> graphs_pb2.Link:
    return graphs_pb2.Link(
        source_id=source, source_name=source_name, sink_id=sink, sink_name=sink_name
    )


def spec(name: str = "Greeter", greeting: str = "Hello") -> graphs_pb2.GraphSpec:
    return graphs_pb2.GraphSpec(
        name=name,
        description="Greets someone",
        nodes=[
            node("input_node", "text_input_block", name="who", description="Who to greet"),
            node("template", "text_template_block", template=greeting + " {{ who }}", n=2**70),
            node("output_node", "output_block", name="greeting"),
        ],
        links=[
            link("input_node", "text", "template", "who"),
            link("template", "text", "output_node", "value"),
        ],
    )


async def create(graphs: Stub, user_id: str, name: str = "Greeter") -> graphs_pb2.Graph:
    response = await graphs.CreateGraph(
        graphs_pb2.CreateGraphRequest(user_id=user_id, graph=spec(name))
    )
    return response.graph


async def rpc_error(call: Any) -> grpc.aio.AioRpcError:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call
    return raised.value


async def test_create_then_get_returns_the_whole_graph_with_its_schemas(
    graphs: Stub, user_id: str
) -> None:
    created = await create(graphs, user_id)

    fetched = (
        await graphs.GetGraph(graphs_pb2.GetGraphRequest(user_id=user_id, graph_id=created.id))
    ).graph

    assert fetched == created
    assert uuid.UUID(fetched.id) and (fetched.version, fetched.is_active) == (1, True)
    assert fetched.user_id == user_id and fetched.created_at.seconds > 0
    assert [n.id for n in fetched.nodes] == ["input_node", "template", "output_node"]
    assert json.loads(fetched.nodes[1].input_default_json)["n"] == 2**70
    assert json.loads(fetched.nodes[0].metadata_json) == {"position": {"x": 1, "y": 2}}
    assert all(uuid.UUID(lk.id) for lk in fetched.links)
    assert json.loads(fetched.input_schema_json) == {
        "type": "object",
        "properties": {"who": {"type": "string", "title": "who", "description": "Who to greet"}},
        "required": ["who"],
    }
    assert json.loads(fetched.output_schema_json)["properties"] == {
        "greeting": {"title": "greeting"}
    }


async def test_update_makes_a_new_active_version_and_stale_updates_conflict(
    graphs: Stub, user_id: str
) -> None:
    created = await create(graphs, user_id)

    updated = (
        await graphs.UpdateGraph(
            graphs_pb2.UpdateGraphRequest(
                user_id=user_id, graph_id=created.id, graph=spec(greeting="Hi"), expected_version=1
            )
        )
    ).graph
    stale = await rpc_error(
        graphs.UpdateGraph(
            graphs_pb2.UpdateGraphRequest(
                user_id=user_id, graph_id=created.id, graph=spec(), expected_version=1
            )
        )
    )

    assert (updated.id, updated.version, updated.is_active) == (created.id, 2, True)
    assert "Hi {{ who }}" in updated.nodes[1].input_default_json
    assert stale.code() == grpc.StatusCode.ABORTED
    assert error_info(stale) == (
        "GRAPH_VERSION_CONFLICT",
        {"expected_version": "1", "latest_version": "2"},
    )


async def test_versions_can_be_listed_and_any_one_made_active(graphs: Stub, user_id: str) -> None:
    created = await create(graphs, user_id)
    for _ in range(2):
        await graphs.UpdateGraph(
            graphs_pb2.UpdateGraphRequest(user_id=user_id, graph_id=created.id, graph=spec())
        )

    activated = await graphs.SetActiveVersion(
        graphs_pb2.SetActiveVersionRequest(user_id=user_id, graph_id=created.id, version=2)
    )
    versions = await graphs.ListGraphVersions(
        graphs_pb2.ListGraphVersionsRequest(user_id=user_id, graph_id=created.id)
    )
    active = await graphs.GetGraph(graphs_pb2.GetGraphRequest(user_id=user_id, graph_id=created.id))
    unknown = await rpc_error(
        graphs.SetActiveVersion(
            graphs_pb2.SetActiveVersionRequest(user_id=user_id, graph_id=created.id, version=9)
        )
    )

    assert (activated.graph.version, activated.graph.is_active) == (2, True)
    assert [(g.version, g.is_active) for g in versions.graphs] == [
        (3, False),
        (2, True),
        (1, False),
    ]
    assert active.graph.version == 2
    assert unknown.code() == grpc.StatusCode.NOT_FOUND
    assert error_info(unknown)[0] == "GRAPH_VERSION_NOT_FOUND"


async def test_list_pages_with_tokens_through_the_active_versions(
    graphs: Stub, user_id: str
) -> None:
    made = [await create(graphs, user_id, f"g{i}") for i in range(3)]
    await graphs.SetActiveVersion(
        graphs_pb2.SetActiveVersionRequest(user_id=user_id, graph_id=made[0].id, version=1)
    )

    first = await graphs.ListGraphs(graphs_pb2.ListGraphsRequest(user_id=user_id, page_size=2))
    second = await graphs.ListGraphs(
        graphs_pb2.ListGraphsRequest(user_id=user_id, page_size=2, page_token=first.next_page_token)
    )
    everything = await graphs.ListGraphs(graphs_pb2.ListGraphsRequest(user_id=user_id))

    assert [g.name for g in first.graphs] == ["g2", "g1"] and first.next_page_token
    assert [g.name for g in second.graphs] == ["g0"] and second.next_page_token == ""
    assert [g.id for g in everything.graphs] == [m.id for m in reversed(made)]
    assert all(g.is_active for g in everything.graphs)


async def test_a_caller_holding_the_version_asked_for_gets_only_its_number(
    graphs: Stub, user_id: str
) -> None:
    """`known_version`: the executions API holds the versions it ran; when the one asked for
    (the active one, or a given one) is still the one held, the answer carries no graph."""
    created = await create(graphs, user_id)

    async def get(version: int, known: int) -> graphs_pb2.GetGraphResponse:
        request = graphs_pb2.GetGraphRequest(
            user_id=user_id, graph_id=created.id, version=version, known_version=known
        )
        reply: graphs_pb2.GetGraphResponse = await graphs.GetGraph(request)
        return reply

    held = await get(0, 1)
    await graphs.UpdateGraph(
        graphs_pb2.UpdateGraphRequest(user_id=user_id, graph_id=created.id, graph=spec("Two"))
    )
    moved = await get(0, 1)
    old = await get(1, 1)
    stale = await get(1, 2)
    missing = await rpc_error(get(3, 3))

    assert (held.unchanged, held.graph.version, len(held.graph.nodes)) == (True, 1, 0)
    assert (moved.unchanged, moved.graph.version, moved.graph.name) == (False, 2, "Two")
    assert len(moved.graph.nodes) == len(created.nodes)
    assert (old.unchanged, old.graph.version, len(old.graph.nodes)) == (True, 1, 0)
    assert (stale.unchanged, stale.graph.version, stale.graph.name) == (False, 1, "Greeter")
    assert error_info(missing)[0] == "GRAPH_VERSION_NOT_FOUND"


async def test_delete_removes_the_graph_from_reads_and_lists(graphs: Stub, user_id: str) -> None:
    kept = await create(graphs, user_id, "kept")
    deleted = await create(graphs, user_id, "deleted")

    await graphs.DeleteGraph(graphs_pb2.DeleteGraphRequest(user_id=user_id, graph_id=deleted.id))
    gone = await rpc_error(
        graphs.GetGraph(graphs_pb2.GetGraphRequest(user_id=user_id, graph_id=deleted.id))
    )
    listed = await graphs.ListGraphs(graphs_pb2.ListGraphsRequest(user_id=user_id))

    assert gone.code() == grpc.StatusCode.NOT_FOUND
    assert [g.id for g in listed.graphs] == [kept.id]


async def test_another_users_graph_answers_exactly_like_a_missing_one(
    graphs: Stub, user_id: str
) -> None:
    theirs = await create(graphs, f"other-{uuid.uuid4()}")

    def calls(graph_id: str) -> list[Any]:
        return [
            graphs.GetGraph(graphs_pb2.GetGraphRequest(user_id=user_id, graph_id=graph_id)),
            graphs.UpdateGraph(
                graphs_pb2.UpdateGraphRequest(user_id=user_id, graph_id=graph_id, graph=spec())
            ),
            graphs.ListGraphVersions(
                graphs_pb2.ListGraphVersionsRequest(user_id=user_id, graph_id=graph_id)
            ),
            graphs.SetActiveVersion(
                graphs_pb2.SetActiveVersionRequest(user_id=user_id, graph_id=graph_id, version=1)
            ),
            graphs.DeleteGraph(graphs_pb2.DeleteGraphRequest(user_id=user_id, graph_id=graph_id)),
            graphs.GetGraph(
                graphs_pb2.GetGraphRequest(user_id=user_id, graph_id=graph_id, known_version=1)
            ),
        ]

    answers = {}
    for graph_id in (theirs.id, str(uuid.uuid4()), "not-a-uuid", "../../etc"):
        for index, call in enumerate(calls(graph_id)):
            error = await rpc_error(call)
            answers[(graph_id, index)] = (error.code(), error.details(), error_info(error))

    expected = (grpc.StatusCode.NOT_FOUND, "graph not found", ("GRAPH_NOT_FOUND", {}))
    assert len(answers) == 24 and all(answer == expected for answer in answers.values())
    listed = await graphs.ListGraphs(graphs_pb2.ListGraphsRequest(user_id=user_id))
    assert list(listed.graphs) == []


async def test_invalid_graph_is_refused_with_node_errors_and_stores_nothing(
    graphs: Stub, user_id: str, catalog: Catalog
) -> None:
    bad = graphs_pb2.GraphSpec(
        name="bad",
        nodes=[node("a", "no_such_block"), node("b", "pass_through_block")],
        links=[link("b", "value", "ghost", "value"), link("b", "nope", "b", "value")],
    )

    error = await rpc_error(
        graphs.CreateGraph(graphs_pb2.CreateGraphRequest(user_id=user_id, graph=bad))
    )

    reason, metadata = error_info(error)
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert reason == "GRAPH_INVALID"
    assert json.loads(metadata["node_errors"]) == {
        "": {"links[0].sink_id": "node 'ghost' does not exist"},
        "a": {"block_id": "unknown block 'no_such_block'"},
        "b": {"nope": f"block {catalog['pass_through_block'].name!r} has no output 'nope'"},
    }
    assert error.details().startswith("graph is invalid (3 problems)")
    listed = await graphs.ListGraphs(graphs_pb2.ListGraphsRequest(user_id=user_id))
    assert list(listed.graphs) == []


async def test_a_huge_invalid_graph_still_gets_a_readable_invalid_argument(
    graphs: Stub, user_id: str
) -> None:
    nodes = [node("n" * 90 + str(i), "x" * 90) for i in range(500)]
    bad = graphs_pb2.GraphSpec(name="huge", nodes=nodes)

    error = await rpc_error(
        graphs.CreateGraph(graphs_pb2.CreateGraphRequest(user_id=user_id, graph=bad))
    )

    node_errors = json.loads(error_info(error)[1]["node_errors"])
    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert node_errors[""]["truncated"].endswith("more problems not shown")


async def test_an_invalid_update_leaves_the_graph_unchanged(graphs: Stub, user_id: str) -> None:
    created = await create(graphs, user_id)

    error = await rpc_error(
        graphs.UpdateGraph(
            graphs_pb2.UpdateGraphRequest(
                user_id=user_id, graph_id=created.id, graph=graphs_pb2.GraphSpec(name="")
            )
        )
    )
    versions = await graphs.ListGraphVersions(
        graphs_pb2.ListGraphVersionsRequest(user_id=user_id, graph_id=created.id)
    )

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert [g.version for g in versions.graphs] == [1]


@pytest.mark.parametrize(
    ("request_", "reason"),
    [
        (graphs_pb2.ListGraphsRequest(user_id=""), "USER_ID_REQUIRED"),
        (graphs_pb2.ListGraphsRequest(user_id="u", page_token="garbage"), "INVALID_PAGE_TOKEN"),
        (graphs_pb2.ListGraphsRequest(user_id="u", page_size=-5), "INVALID_PAGE_SIZE"),
    ],
)
async def test_bad_list_requests_are_invalid_arguments(
    graphs: Stub, request_: graphs_pb2.ListGraphsRequest, reason: str
) -> None:
    error = await rpc_error(graphs.ListGraphs(request_))

    assert error.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(error)[0] == reason


async def test_health_reports_the_service_serving(
    channel: grpc.aio.Channel, graphs_running: graphs_server.RunningServer
) -> None:
    stub = health_pb2_grpc.HealthStub(channel)

    answer = await stub.Check(health_pb2.HealthCheckRequest(service=graphs_server.SERVICE_NAME))

    assert answer.status == health_pb2.HealthCheckResponse.SERVING


async def test_without_the_blocks_service_writes_are_unavailable_and_reads_still_work(
    migrated_url: str, amqp_url: str, graphs: Stub, user_id: str
) -> None:
    created = await create(graphs, user_id)
    settings = GraphsSettings(
        listen_addr="127.0.0.1:0",
        database_url=migrated_url,
        amqp_url=amqp_url,
        blocks_addr="127.0.0.1:1",
        grpc_deadline_s=1,
        db_pool_size=1,
    )
    running = await graphs_server.start(settings)
    try:
        async with grpc.aio.insecure_channel(f"127.0.0.1:{running.port}") as channel:
            isolated = graphs_pb2_grpc.GraphsServiceStub(channel)
            error = await rpc_error(
                isolated.CreateGraph(graphs_pb2.CreateGraphRequest(user_id=user_id, graph=spec()))
            )
            read = await isolated.GetGraph(
                graphs_pb2.GetGraphRequest(user_id=user_id, graph_id=created.id)
            )
    finally:
        await running.stop()

    assert error.code() == grpc.StatusCode.UNAVAILABLE
    assert error_info(error)[0] == "BLOCK_CATALOG_UNAVAILABLE"
    assert read.graph == created
