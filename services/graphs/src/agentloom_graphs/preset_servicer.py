"""gRPC translation for presets: proto in, validation and repository calls, proto out."""

from __future__ import annotations

import json

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentloom.graphs.v1 import presets_pb2, presets_pb2_grpc
from agentloom_graphs import pagination, preset_repository
from agentloom_graphs.domain import require_user_id
from agentloom_graphs.errors import preset_graph_mismatch
from agentloom_graphs.preset_repository import PresetRecord
from agentloom_graphs.presets import PresetDraft, validate_preset


class PresetServicer(presets_pb2_grpc.PresetServiceServicer):
    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._sessions = sessions

    async def CreatePreset(
        self, request: presets_pb2.CreatePresetRequest, context: grpc.aio.ServicerContext
    ) -> presets_pb2.CreatePresetResponse:
        user_id = require_user_id(request.user_id)
        spec = request.preset
        async with self._sessions.begin() as session:
            graph_id, version, schema = await preset_repository.graph_version_schema(
                session=session, user_id=user_id, graph_id=spec.graph_id, version=spec.graph_version
            )
            record = await preset_repository.create_preset(
                session=session,
                user_id=user_id,
                graph_id=graph_id,
                graph_version=version,
                content=validate_preset(to_draft(spec), schema),
            )
        return presets_pb2.CreatePresetResponse(preset=to_proto(record))

    async def GetPreset(
        self, request: presets_pb2.GetPresetRequest, context: grpc.aio.ServicerContext
    ) -> presets_pb2.GetPresetResponse:
        user_id = require_user_id(request.user_id)
        async with self._sessions.begin() as session:
            record = await preset_repository.get_preset(
                session=session, user_id=user_id, preset_id=request.preset_id
            )
        return presets_pb2.GetPresetResponse(preset=to_proto(record))

    async def ListPresets(
        self, request: presets_pb2.ListPresetsRequest, context: grpc.aio.ServicerContext
    ) -> presets_pb2.ListPresetsResponse:
        user_id = require_user_id(request.user_id)
        page_size = pagination.page_size(request.page_size)
        after = pagination.decode_token(request.page_token)
        async with self._sessions.begin() as session:
            page = await preset_repository.list_presets(
                session=session,
                user_id=user_id,
                graph_id=request.graph_id,
                page_size=page_size,
                after=after,
            )
        token = pagination.encode_token(page.next_cursor) if page.next_cursor else ""
        return presets_pb2.ListPresetsResponse(
            presets=[to_proto(r) for r in page.records], next_page_token=token
        )

    async def UpdatePreset(
        self, request: presets_pb2.UpdatePresetRequest, context: grpc.aio.ServicerContext
    ) -> presets_pb2.UpdatePresetResponse:
        user_id = require_user_id(request.user_id)
        spec = request.preset
        async with self._sessions.begin() as session:
            current = await preset_repository.get_preset(
                session=session, user_id=user_id, preset_id=request.preset_id
            )
            if spec.graph_id and spec.graph_id != str(current.graph_id):
                raise preset_graph_mismatch()
            _, version, schema = await preset_repository.graph_version_schema(
                session=session,
                user_id=user_id,
                graph_id=str(current.graph_id),
                version=spec.graph_version or current.graph_version,
            )
            record = await preset_repository.update_preset(
                session=session,
                user_id=user_id,
                preset_id=request.preset_id,
                graph_version=version,
                content=validate_preset(to_draft(spec), schema),
            )
        return presets_pb2.UpdatePresetResponse(preset=to_proto(record))

    async def DeletePreset(
        self, request: presets_pb2.DeletePresetRequest, context: grpc.aio.ServicerContext
    ) -> presets_pb2.DeletePresetResponse:
        user_id = require_user_id(request.user_id)
        async with self._sessions.begin() as session:
            await preset_repository.delete_preset(
                session=session, user_id=user_id, preset_id=request.preset_id
            )
        return presets_pb2.DeletePresetResponse()


def to_draft(spec: presets_pb2.PresetSpec) -> PresetDraft:
    return PresetDraft(
        name=spec.name,
        description=spec.description,
        inputs_json=spec.inputs_json,
        credentials_inputs_json=spec.credentials_inputs_json,
    )


def to_proto(record: PresetRecord) -> presets_pb2.Preset:
    created_at, updated_at = Timestamp(), Timestamp()
    created_at.FromDatetime(record.created_at)
    updated_at.FromDatetime(record.updated_at)
    content = record.content
    return presets_pb2.Preset(
        id=str(record.id),
        user_id=record.user_id,
        graph_id=str(record.graph_id),
        graph_version=record.graph_version,
        name=content.name,
        description=content.description,
        inputs_json=json.dumps(content.inputs),
        credentials_inputs_json=json.dumps(content.credentials_inputs),
        created_at=created_at,
        updated_at=updated_at,
    )
