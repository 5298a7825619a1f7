"""/api/presets: saved inputs and credential choices for a graph version (the reference's
`preset_id` on execute). The graphs service stores and validates them; these routes
translate. The reference's endpoint table has no preset paths, so they follow the style of
the others: `GET/POST /api/presets`, `GET/PUT/DELETE /api/presets/{preset_id}`."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

import grpc
from fastapi import APIRouter, Path, Query, Response
from pydantic import BaseModel, ConfigDict, Field

from agentloom.graphs.v1 import presets_pb2
from agentloom_common.problem import FieldError
from agentloom_gateway.access import requires
from agentloom_gateway.auth import PrincipalDep
from agentloom_gateway.clients import Services
from agentloom_gateway.deps import ServicesDep
from agentloom_gateway.errors import ApiProblem, problem_responses
from agentloom_gateway.routes.graphs import PageSize, PageToken
from agentloom_gateway.schemas import MAX_INT32, ExecuteIn
from agentloom_gateway.text import PlainName, PlainText

router = APIRouter(prefix="/presets", tags=["presets"])

PresetId = Annotated[uuid.UUID, Path(description="Preset id.")]
_CREDENTIALS_DESCRIPTION = (
    'Which stored credential a block uses, by provider: `{"openai": {"id": "<credential id>"}}`.'
)


class PresetUpdate(BaseModel):
    """The new content of a preset (it keeps its graph)."""

    model_config = ConfigDict(extra="forbid")

    name: PlainName = Field(min_length=1, max_length=200)
    description: PlainText = Field(default="", max_length=5_000)
    graph_version: int | None = Field(
        default=None, ge=1, le=MAX_INT32, description="Default: the preset's current version."
    )
    inputs: dict[str, Any] = Field(
        default_factory=dict, description="Graph inputs by name; may be partial."
    )
    credentials_inputs: dict[str, Any] = Field(
        default_factory=dict, description=_CREDENTIALS_DESCRIPTION
    )


class PresetIn(PresetUpdate):
    """A preset to create, for one version of one of the caller's graphs."""

    graph_id: uuid.UUID
    graph_version: int | None = Field(
        default=None, ge=1, le=MAX_INT32, description="Default: the graph's active version."
    )


class Preset(BaseModel):
    id: str
    graph_id: str
    graph_version: int
    name: str
    description: str
    inputs: dict[str, Any]
    credentials_inputs: dict[str, Any]
    created_at: datetime
    updated_at: datetime


class PresetList(BaseModel):
    presets: list[Preset]
    next_page_token: str | None = Field(description="Pass as `page_token`; null on the last page.")


def preset_from_proto(message: presets_pb2.Preset) -> Preset:
    return Preset(
        id=message.id,
        graph_id=message.graph_id,
        graph_version=message.graph_version,
        name=message.name,
        description=message.description,
        inputs=json_object(message.inputs_json),
        credentials_inputs=json_object(message.credentials_inputs_json),
        created_at=message.created_at.ToDatetime(tzinfo=UTC),
        updated_at=message.updated_at.ToDatetime(tzinfo=UTC),
    )


def json_object(text: str) -> dict[str, Any]:
    value = json.loads(text) if text else {}
    return value if isinstance(value, dict) else {}


def _spec(body: PresetUpdate, graph_id: str = "") -> presets_pb2.PresetSpec:
    return presets_pb2.PresetSpec(
        graph_id=graph_id,
        graph_version=body.graph_version or 0,
        name=body.name,
        description=body.description,
        inputs_json=json.dumps(body.inputs),
        credentials_inputs_json=json.dumps(body.credentials_inputs),
    )


@router.post(
    "",
    status_code=201,
    summary="Create a preset",
    description="Inputs are checked against the graph version's inputs: an unknown name "
    "answers 400 with the field in `errors`.",
    responses=problem_responses(403, 404),
    dependencies=[requires("graphs:write")],
)
async def create_preset(
    body: PresetIn, principal: PrincipalDep, services: ServicesDep, response: Response
) -> Preset:
    request = presets_pb2.CreatePresetRequest(
        user_id=principal.user_id, preset=_spec(body, str(body.graph_id))
    )
    reply: presets_pb2.CreatePresetResponse = await services.presets.CreatePreset(request)
    response.headers["Location"] = f"/api/presets/{reply.preset.id}"
    return preset_from_proto(reply.preset)


@router.get(
    "",
    summary="List presets, newest first",
    responses=problem_responses(403),
    dependencies=[requires("graphs:read")],
)
async def list_presets(
    principal: PrincipalDep,
    services: ServicesDep,
    graph_id: Annotated[uuid.UUID | None, Query(description="Only this graph's.")] = None,
    page_size: PageSize = 20,
    page_token: PageToken = "",
) -> PresetList:
    request = presets_pb2.ListPresetsRequest(
        user_id=principal.user_id,
        graph_id=str(graph_id) if graph_id else "",
        page_size=page_size,
        page_token=page_token,
    )
    reply: presets_pb2.ListPresetsResponse = await services.presets.ListPresets(request)
    return PresetList(
        presets=[preset_from_proto(preset) for preset in reply.presets],
        next_page_token=reply.next_page_token or None,
    )


@router.get(
    "/{preset_id}",
    summary="Get a preset",
    responses=problem_responses(403, 404),
    dependencies=[requires("graphs:read")],
)
async def get_preset(preset_id: PresetId, principal: PrincipalDep, services: ServicesDep) -> Preset:
    request = presets_pb2.GetPresetRequest(user_id=principal.user_id, preset_id=str(preset_id))
    reply: presets_pb2.GetPresetResponse = await services.presets.GetPreset(request)
    return preset_from_proto(reply.preset)


@router.put(
    "/{preset_id}",
    summary="Replace a preset's content",
    responses=problem_responses(403, 404),
    dependencies=[requires("graphs:write")],
)
async def update_preset(
    preset_id: PresetId, body: PresetUpdate, principal: PrincipalDep, services: ServicesDep
) -> Preset:
    request = presets_pb2.UpdatePresetRequest(
        user_id=principal.user_id, preset_id=str(preset_id), preset=_spec(body)
    )
    reply: presets_pb2.UpdatePresetResponse = await services.presets.UpdatePreset(request)
    return preset_from_proto(reply.preset)


@router.delete(
    "/{preset_id}",
    status_code=204,
    summary="Delete a preset",
    responses=problem_responses(403, 404),
    dependencies=[requires("graphs:write")],
)
async def delete_preset(
    preset_id: PresetId, principal: PrincipalDep, services: ServicesDep
) -> None:
    request = presets_pb2.DeletePresetRequest(user_id=principal.user_id, preset_id=str(preset_id))
    await services.presets.DeletePreset(request)


async def apply_preset(
    services: Services,
    user_id: str,
    graph_id: uuid.UUID,
    graph_version: int,
    preset_id: uuid.UUID,
    body: ExecuteIn,
) -> tuple[int, ExecuteIn]:
    """The version and body of an execute call with the preset merged UNDER the call's own
    inputs and credential choices (the call wins per key). Without a version in the call, the
    preset's version runs. Another user's preset is 404, another graph's 422, both naming
    `preset_id`."""
    field = "query.preset_id"
    try:
        reply: presets_pb2.GetPresetResponse = await services.presets.GetPreset(
            presets_pb2.GetPresetRequest(user_id=user_id, preset_id=str(preset_id))
        )
    except grpc.aio.AioRpcError as error:
        if error.code() != grpc.StatusCode.NOT_FOUND:
            raise
        missing = FieldError(field=field, message="no such preset")
        raise ApiProblem(404, "PRESET_NOT_FOUND", "preset not found", errors=[missing]) from None
    preset = reply.preset
    if preset.graph_id != str(graph_id):
        wrong = FieldError(field=field, message="the preset belongs to another graph")
        raise ApiProblem(
            422, "PRESET_GRAPH_MISMATCH", "the preset is not this graph's", errors=[wrong]
        )
    merged = body.model_copy(
        update={
            "inputs": {**json_object(preset.inputs_json), **body.inputs},
            "credentials_inputs": {
                **json_object(preset.credentials_inputs_json),
                **body.credentials_inputs,
            },
        }
    )
    return graph_version or preset.graph_version, merged
