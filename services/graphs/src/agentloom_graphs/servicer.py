"""gRPC translation for graphs: proto in, domain and repository calls, proto out."""

from __future__ import annotations

import json

import grpc
from google.protobuf.timestamp_pb2 import Timestamp
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentloom.graphs.v1 import graphs_pb2, graphs_pb2_grpc
from agentloom_common.db import autocommit_sessions
from agentloom_graphs import pagination, repository
from agentloom_graphs.catalog_client import CatalogClient
from agentloom_graphs.changes import GraphChanges
from agentloom_graphs.domain import (
    Graph,
    GraphDraft,
    LinkDraft,
    NodeDraft,
    require_user_id,
    validate_graph,
)
from agentloom_graphs.repository import GraphRecord


class GraphsServicer(graphs_pb2_grpc.GraphsServiceServicer):
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        catalog: CatalogClient,
        changes: GraphChanges,
    ) -> None:
        self._sessions = sessions
        self._reads = autocommit_sessions(sessions)  # one-statement reads: no BEGIN, no COMMIT
        self._catalog = catalog
        # Announced after each commit that changes what GetGraph answers (changes.py).
        self._changes = changes

    async def CreateGraph(
        self, request: graphs_pb2.CreateGraphRequest, context: grpc.aio.ServicerContext
    ) -> graphs_pb2.CreateGraphResponse:
        user_id = require_user_id(request.user_id)
        graph = await self._validate(request.graph)
        async with self._sessions.begin() as session:
            record = await repository.create_graph(session=session, user_id=user_id, graph=graph)
        return graphs_pb2.CreateGraphResponse(graph=to_proto(record))

    async def GetGraph(
        self, request: graphs_pb2.GetGraphRequest, context: grpc.aio.ServicerContext
    ) -> graphs_pb2.GetGraphResponse:
        user_id = require_user_id(request.user_id)
        async with self._reads() as session:
            if request.known_version:
                # The caller holds a version already (the executions API, per run): a
                # small read rather than the whole graph, when it is still the one asked.
                version = await repository.resolve_version(
                    session=session,
                    user_id=user_id,
                    graph_id=request.graph_id,
                    version=request.version,
                )
                if version == request.known_version:
                    held = graphs_pb2.Graph(id=request.graph_id, version=version)
                    return graphs_pb2.GetGraphResponse(graph=held, unchanged=True)
            record = await repository.get_graph(
                session=session, user_id=user_id, graph_id=request.graph_id, version=request.version
            )
        return graphs_pb2.GetGraphResponse(graph=to_proto(record))

    async def ListGraphs(
        self, request: graphs_pb2.ListGraphsRequest, context: grpc.aio.ServicerContext
    ) -> graphs_pb2.ListGraphsResponse:
        user_id = require_user_id(request.user_id)
        page_size = pagination.page_size(request.page_size)
        after = pagination.decode_token(request.page_token)
        async with self._reads() as session:
            page = await repository.list_graphs(
                session=session, user_id=user_id, page_size=page_size, after=after
            )
        token = pagination.encode_token(page.next_cursor) if page.next_cursor else ""
        return graphs_pb2.ListGraphsResponse(
            graphs=[to_proto(r) for r in page.records], next_page_token=token
        )

    async def UpdateGraph(
        self, request: graphs_pb2.UpdateGraphRequest, context: grpc.aio.ServicerContext
    ) -> graphs_pb2.UpdateGraphResponse:
        user_id = require_user_id(request.user_id)
        graph = await self._validate(request.graph)
        async with self._sessions.begin() as session:
            record = await repository.update_graph(
                session=session,
                user_id=user_id,
                graph_id=request.graph_id,
                graph=graph,
                expected_version=request.expected_version,
            )
        await self._changes.announce(user_id, request.graph_id)
        return graphs_pb2.UpdateGraphResponse(graph=to_proto(record))

    async def ListGraphVersions(
        self, request: graphs_pb2.ListGraphVersionsRequest, context: grpc.aio.ServicerContext
    ) -> graphs_pb2.ListGraphVersionsResponse:
        user_id = require_user_id(request.user_id)
        async with self._sessions.begin() as session:
            records = await repository.list_versions(
                session=session, user_id=user_id, graph_id=request.graph_id
            )
        return graphs_pb2.ListGraphVersionsResponse(graphs=[to_proto(r) for r in records])

    async def SetActiveVersion(
        self, request: graphs_pb2.SetActiveVersionRequest, context: grpc.aio.ServicerContext
    ) -> graphs_pb2.SetActiveVersionResponse:
        user_id = require_user_id(request.user_id)
        async with self._sessions.begin() as session:
            record = await repository.set_active_version(
                session=session, user_id=user_id, graph_id=request.graph_id, version=request.version
            )
        await self._changes.announce(user_id, request.graph_id)
        return graphs_pb2.SetActiveVersionResponse(graph=to_proto(record))

    async def DeleteGraph(
        self, request: graphs_pb2.DeleteGraphRequest, context: grpc.aio.ServicerContext
    ) -> graphs_pb2.DeleteGraphResponse:
        user_id = require_user_id(request.user_id)
        async with self._sessions.begin() as session:
            await repository.delete_graph(
                session=session, user_id=user_id, graph_id=request.graph_id
            )
        await self._changes.announce(user_id, request.graph_id)
        return graphs_pb2.DeleteGraphResponse()

    async def _validate(self, spec: graphs_pb2.GraphSpec) -> Graph:
        return validate_graph(to_draft(spec), await self._catalog.get())


def to_draft(spec: graphs_pb2.GraphSpec) -> GraphDraft:
    return GraphDraft(
        name=spec.name,
        description=spec.description,
        nodes=[
            NodeDraft(n.id, n.block_id, n.input_default_json, n.metadata_json) for n in spec.nodes
        ],
        links=[
            LinkDraft(
                id=link.id,
                source_id=link.source_id,
                source_name=link.source_name,
                sink_id=link.sink_id,
                sink_name=link.sink_name,
                is_static=link.is_static,
            )
            for link in spec.links
        ],
    )


def to_proto(record: GraphRecord) -> graphs_pb2.Graph:
    created_at = Timestamp()
    created_at.FromDatetime(record.created_at)
    graph = record.content
    return graphs_pb2.Graph(
        id=str(record.id),
        version=record.version,
        is_active=record.is_active,
        name=graph.name,
        description=graph.description,
        user_id=record.user_id,
        nodes=[
            graphs_pb2.Node(
                id=node.id,
                block_id=node.block_id,
                input_default_json=json.dumps(node.input_default),
                metadata_json=json.dumps(node.metadata),
            )
            for node in graph.nodes
        ],
        links=[
            graphs_pb2.Link(
                id=link.id,
                source_id=link.source_id,
                source_name=link.source_name,
                sink_id=link.sink_id,
                sink_name=link.sink_name,
                is_static=link.is_static,
            )
            for link in graph.links
        ],
        created_at=created_at,
        input_schema_json=json.dumps(graph.input_schema),
        output_schema_json=json.dumps(graph.output_schema),
    )
