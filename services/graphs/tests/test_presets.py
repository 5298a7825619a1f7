"""Presets through the graphs service's real gRPC server: CRUD, ownership, validation against
the graph version's inputs, and cascade on graph deletion."""

from __future__ import annotations

import json
import uuid
from typing import TYPE_CHECKING

import grpc
import pytest

from agentloom.graphs.v1 import graphs_pb2, presets_pb2, presets_pb2_grpc
from agentloom_common.errors import error_info
from agentloom_graphs.presets import PresetDraft, validate_preset

if TYPE_CHECKING:
    from agentloom.graphs.v1.graphs_pb2_grpc import GraphsServiceAsyncStub
    from agentloom.graphs.v1.presets_pb2_grpc import PresetServiceAsyncStub as Stub


async def create(
    graphs: GraphsServiceAsyncStub, user_id: str, name: str = "Greeter"
) -> graphs_pb2.Graph:
    """A graph with one input, `who`."""
    spec = graphs_pb2.GraphSpec(
        name=name,
        nodes=[
            graphs_pb2.Node(
                id="in", block_id="text_input_block", input_default_json='{"name": "who"}'
            ),
            graphs_pb2.Node(
                id="out", block_id="output_block", input_default_json='{"name": "out"}'
            ),
        ],
        links=[
            graphs_pb2.Link(source_id="in", source_name="text", sink_id="out", sink_name="value")
        ],
    )
    reply = await graphs.CreateGraph(graphs_pb2.CreateGraphRequest(user_id=user_id, graph=spec))
    return reply.graph


@pytest.fixture
def presets(channel: grpc.aio.Channel) -> Stub:
    return presets_pb2_grpc.PresetServiceStub(channel)  # type: ignore[return-value]


def preset_spec(graph_id: str, **overrides: object) -> presets_pb2.PresetSpec:
    values: dict[str, object] = {
        "graph_id": graph_id,
        "name": "Morning",
        "description": "for Ada",
        "inputs_json": json.dumps({"who": "Ada"}),
        "credentials_inputs_json": json.dumps({"openai": {"id": "cred-1"}}),
        **overrides,
    }
    return presets_pb2.PresetSpec(**values)  # type: ignore[arg-type]


async def _fails(call: object, code: grpc.StatusCode) -> tuple[str, dict[str, str]]:
    with pytest.raises(grpc.aio.AioRpcError) as caught:
        await call  # type: ignore[misc]
    assert caught.value.code() == code, caught.value.details()
    return error_info(caught.value)


async def test_preset_crud_round_trip(
    graphs: GraphsServiceAsyncStub, presets: Stub, user_id: str
) -> None:
    graph = await create(graphs, user_id)
    created = (
        await presets.CreatePreset(
            presets_pb2.CreatePresetRequest(user_id=user_id, preset=preset_spec(graph.id))
        )
    ).preset
    assert created.graph_version == graph.version == 1  # 0 resolved to the active version
    assert json.loads(created.inputs_json) == {"who": "Ada"}
    assert json.loads(created.credentials_inputs_json) == {"openai": {"id": "cred-1"}}

    got = await presets.GetPreset(
        presets_pb2.GetPresetRequest(user_id=user_id, preset_id=created.id)
    )
    assert got.preset == created

    updated = (
        await presets.UpdatePreset(
            presets_pb2.UpdatePresetRequest(
                user_id=user_id,
                preset_id=created.id,
                preset=preset_spec("", name="Evening", inputs_json='{"who": "Grace"}'),
            )
        )
    ).preset
    assert (updated.name, json.loads(updated.inputs_json)) == ("Evening", {"who": "Grace"})
    assert updated.updated_at.ToDatetime() >= created.updated_at.ToDatetime()

    listed = await presets.ListPresets(
        presets_pb2.ListPresetsRequest(user_id=user_id, graph_id=graph.id)
    )
    assert [p.id for p in listed.presets] == [created.id]
    other_graph = await create(graphs, user_id, name="Other")
    empty = await presets.ListPresets(
        presets_pb2.ListPresetsRequest(user_id=user_id, graph_id=other_graph.id)
    )
    assert list(empty.presets) == []

    await presets.DeletePreset(
        presets_pb2.DeletePresetRequest(user_id=user_id, preset_id=created.id)
    )
    reason, _ = await _fails(
        presets.GetPreset(presets_pb2.GetPresetRequest(user_id=user_id, preset_id=created.id)),
        grpc.StatusCode.NOT_FOUND,
    )
    assert reason == "PRESET_NOT_FOUND"


async def test_another_users_preset_and_graph_look_missing(
    graphs: GraphsServiceAsyncStub, presets: Stub, user_id: str
) -> None:
    graph = await create(graphs, user_id)
    created = (
        await presets.CreatePreset(
            presets_pb2.CreatePresetRequest(user_id=user_id, preset=preset_spec(graph.id))
        )
    ).preset
    stranger = f"user-{uuid.uuid4()}"
    for call in (
        presets.GetPreset(presets_pb2.GetPresetRequest(user_id=stranger, preset_id=created.id)),
        presets.DeletePreset(
            presets_pb2.DeletePresetRequest(user_id=stranger, preset_id=created.id)
        ),
        presets.UpdatePreset(
            presets_pb2.UpdatePresetRequest(
                user_id=stranger, preset_id=created.id, preset=preset_spec("")
            )
        ),
        presets.GetPreset(presets_pb2.GetPresetRequest(user_id=user_id, preset_id="not-a-uuid")),
    ):
        assert (await _fails(call, grpc.StatusCode.NOT_FOUND))[0] == "PRESET_NOT_FOUND"
    reason, _ = await _fails(
        presets.CreatePreset(
            presets_pb2.CreatePresetRequest(user_id=stranger, preset=preset_spec(graph.id))
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    assert reason == "GRAPH_NOT_FOUND"
    listed = await presets.ListPresets(presets_pb2.ListPresetsRequest(user_id=stranger))
    assert list(listed.presets) == []


async def test_unknown_input_and_bad_credentials_are_refused_with_their_fields(
    graphs: GraphsServiceAsyncStub, presets: Stub, user_id: str
) -> None:
    graph = await create(graphs, user_id)
    bad = preset_spec(
        graph.id,
        name="  ",
        inputs_json=json.dumps({"who": "Ada", "nope": 1}),
        credentials_inputs_json=json.dumps({"openai": "cred-1"}),
    )
    reason, metadata = await _fails(
        presets.CreatePreset(presets_pb2.CreatePresetRequest(user_id=user_id, preset=bad)),
        grpc.StatusCode.INVALID_ARGUMENT,
    )
    assert reason == "PRESET_INVALID"
    assert set(json.loads(metadata["errors"])) == {
        "name",
        "inputs.nope",
        "credentials_inputs.openai",
    }
    reason, _ = await _fails(
        presets.CreatePreset(
            presets_pb2.CreatePresetRequest(
                user_id=user_id, preset=preset_spec(graph.id, graph_version=7)
            )
        ),
        grpc.StatusCode.NOT_FOUND,
    )
    assert reason == "GRAPH_VERSION_NOT_FOUND"


async def test_deleting_the_graph_deletes_its_presets(
    graphs: GraphsServiceAsyncStub, presets: Stub, user_id: str
) -> None:
    graph = await create(graphs, user_id)
    created = (
        await presets.CreatePreset(
            presets_pb2.CreatePresetRequest(user_id=user_id, preset=preset_spec(graph.id))
        )
    ).preset
    await graphs.DeleteGraph(graphs_pb2.DeleteGraphRequest(user_id=user_id, graph_id=graph.id))
    await _fails(
        presets.GetPreset(presets_pb2.GetPresetRequest(user_id=user_id, preset_id=created.id)),
        grpc.StatusCode.NOT_FOUND,
    )


def test_partial_inputs_are_fine_and_names_are_trimmed() -> None:
    schema = {"type": "object", "properties": {"a": {}, "b": {}}, "required": ["a", "b"]}
    content = validate_preset(PresetDraft(name=" P ", inputs_json='{"a": 1}'), schema)
    assert (content.name, content.inputs, content.credentials_inputs) == ("P", {"a": 1}, {})
