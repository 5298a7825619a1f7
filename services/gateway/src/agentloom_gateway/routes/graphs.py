"""/api/graphs: create, read, list, update (new version), delete, versions."""

from __future__ import annotations

import json
import uuid
from typing import Annotated

from fastapi import APIRouter, Header, Path, Query, Response

from agentloom.graphs.v1 import graphs_pb2
from agentloom_common.problem import FieldError
from agentloom_gateway import convert, schemas
from agentloom_gateway.access import requires
from agentloom_gateway.auth import PrincipalDep
from agentloom_gateway.deps import ServicesDep, SettingsDep
from agentloom_gateway.errors import ApiProblem, problem_responses
from agentloom_gateway.settings import GatewaySettings

router = APIRouter(prefix="/graphs", tags=["graphs"])

GraphId = Annotated[uuid.UUID, Path(description="Graph id.")]
PageSize = Annotated[int, Query(ge=1, le=100, description="Items per page.")]
PageToken = Annotated[str, Query(max_length=1024, description="`next_page_token` of a page.")]


def check_graph_limits(graph: schemas.GraphIn, settings: GatewaySettings) -> None:
    """422 for a graph past the operator's size limits (nodes, links, node input size)."""
    errors: list[FieldError] = []
    if len(graph.nodes) > settings.max_graph_nodes:
        errors.append(FieldError(field="body.nodes", message="too many nodes"))
    if len(graph.links) > settings.max_graph_links:
        errors.append(FieldError(field="body.links", message="too many links"))
    for index, node in enumerate(graph.nodes):
        if len(json.dumps(node.input_default)) > settings.max_node_input_bytes:
            errors.append(
                FieldError(field=f"body.nodes.{index}.input_default", message="input too large")
            )
        if len(json.dumps(node.metadata)) > settings.max_node_metadata_bytes:
            errors.append(
                FieldError(field=f"body.nodes.{index}.metadata", message="metadata too large")
            )
    if errors:
        raise ApiProblem(422, "VALIDATION_ERROR", "the graph exceeds a limit", errors=errors)


def expected_version(if_match: str | None, query_value: int | None) -> int:
    """The version an update expects to replace (0: any), from `If-Match` or the query."""
    header_value: int | None = None
    if if_match is not None and if_match.strip() != "*":
        tag = if_match.strip().removeprefix("W/").strip('"')
        if not tag.isdigit() or not 0 < int(tag) <= schemas.MAX_INT32:
            raise ApiProblem(
                422,
                "VALIDATION_ERROR",
                "If-Match must be a graph version",
                errors=[FieldError(field="header.if-match", message="not a version number")],
            )
        header_value = int(tag)
    if header_value is not None and query_value is not None and header_value != query_value:
        raise ApiProblem(422, "VALIDATION_ERROR", "If-Match and expected_version disagree")
    return header_value or query_value or 0


@router.post(
    "",
    status_code=201,
    summary="Create a graph",
    responses=problem_responses(403, 409),
    dependencies=[requires("graphs:write")],
    response_description="The graph, version 1. `Location` names it.",
)
async def create_graph(
    body: schemas.GraphIn,
    principal: PrincipalDep,
    services: ServicesDep,
    settings: SettingsDep,
    response: Response,
) -> schemas.Graph:
    check_graph_limits(body, settings)
    request = graphs_pb2.CreateGraphRequest(
        user_id=principal.user_id, graph=convert.graph_spec(body)
    )
    reply: graphs_pb2.CreateGraphResponse = await services.graphs.CreateGraph(request)
    response.headers["Location"] = f"/api/graphs/{reply.graph.id}"
    return convert.graph(reply.graph)


@router.get(
    "",
    summary="List graphs (their active versions)",
    responses=problem_responses(403),
    dependencies=[requires("graphs:read")],
)
async def list_graphs(
    principal: PrincipalDep,
    services: ServicesDep,
    page_size: PageSize = 20,
    page_token: PageToken = "",
) -> schemas.GraphList:
    request = graphs_pb2.ListGraphsRequest(
        user_id=principal.user_id, page_size=page_size, page_token=page_token
    )
    reply: graphs_pb2.ListGraphsResponse = await services.graphs.ListGraphs(request)
    return schemas.GraphList(
        graphs=[convert.graph(graph) for graph in reply.graphs],
        next_page_token=reply.next_page_token or None,
    )


@router.get(
    "/{graph_id}",
    summary="Get a graph",
    responses=problem_responses(403, 404),
    dependencies=[requires("graphs:read")],
)
async def get_graph(
    graph_id: GraphId,
    principal: PrincipalDep,
    services: ServicesDep,
    version: Annotated[
        int | None, Query(ge=1, le=schemas.MAX_INT32, description="Default: the active one.")
    ] = None,
) -> schemas.Graph:
    request = graphs_pb2.GetGraphRequest(
        user_id=principal.user_id, graph_id=str(graph_id), version=version or 0
    )
    reply: graphs_pb2.GetGraphResponse = await services.graphs.GetGraph(request)
    return convert.graph(reply.graph)


@router.put(
    "/{graph_id}",
    summary="Update a graph (creates a new active version)",
    description="Optimistic concurrency: send the version you edited as `If-Match: <version>` "
    "or `?expected_version=`; 409 when a newer version exists.",
    responses=problem_responses(403, 404, 409),
    dependencies=[requires("graphs:write")],
)
async def update_graph(
    graph_id: GraphId,
    body: schemas.GraphIn,
    principal: PrincipalDep,
    services: ServicesDep,
    settings: SettingsDep,
    if_match: Annotated[str | None, Header(alias="If-Match")] = None,
    expected: Annotated[
        int | None, Query(alias="expected_version", ge=1, le=schemas.MAX_INT32)
    ] = None,
) -> schemas.Graph:
    check_graph_limits(body, settings)
    request = graphs_pb2.UpdateGraphRequest(
        user_id=principal.user_id,
        graph_id=str(graph_id),
        graph=convert.graph_spec(body),
        expected_version=expected_version(if_match, expected),
    )
    reply: graphs_pb2.UpdateGraphResponse = await services.graphs.UpdateGraph(request)
    return convert.graph(reply.graph)


@router.delete(
    "/{graph_id}",
    status_code=204,
    summary="Delete a graph",
    responses=problem_responses(403, 404),
    dependencies=[requires("graphs:write")],
)
async def delete_graph(graph_id: GraphId, principal: PrincipalDep, services: ServicesDep) -> None:
    request = graphs_pb2.DeleteGraphRequest(user_id=principal.user_id, graph_id=str(graph_id))
    await services.graphs.DeleteGraph(request)


@router.get(
    "/{graph_id}/versions",
    summary="List every version of a graph",
    responses=problem_responses(403, 404),
    dependencies=[requires("graphs:read")],
)
async def list_graph_versions(
    graph_id: GraphId, principal: PrincipalDep, services: ServicesDep
) -> schemas.GraphVersions:
    request = graphs_pb2.ListGraphVersionsRequest(user_id=principal.user_id, graph_id=str(graph_id))
    reply: graphs_pb2.ListGraphVersionsResponse = await services.graphs.ListGraphVersions(request)
    return schemas.GraphVersions(graphs=[convert.graph(graph) for graph in reply.graphs])


@router.put(
    "/{graph_id}/versions/active",
    summary="Choose the active version of a graph",
    responses=problem_responses(403, 404, 409),
    dependencies=[requires("graphs:write")],
)
async def set_active_version(
    graph_id: GraphId,
    body: schemas.ActiveVersionIn,
    principal: PrincipalDep,
    services: ServicesDep,
) -> schemas.Graph:
    request = graphs_pb2.SetActiveVersionRequest(
        user_id=principal.user_id, graph_id=str(graph_id), version=body.active_graph_version
    )
    reply: graphs_pb2.SetActiveVersionResponse = await services.graphs.SetActiveVersion(request)
    return convert.graph(reply.graph)
