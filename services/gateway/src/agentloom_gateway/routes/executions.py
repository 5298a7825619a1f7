"""Running graphs: execute, stop, list, get, results."""

from __future__ import annotations

import json
import uuid
from typing import Annotated

from fastapi import APIRouter, Body, Path, Query, Response

from agentloom.executor.v1 import executor_pb2
from agentloom_gateway import convert, schemas
from agentloom_gateway.access import requires
from agentloom_gateway.auth import Principal, PrincipalDep
from agentloom_gateway.clients import Services
from agentloom_gateway.deps import ServicesDep
from agentloom_gateway.errors import ApiProblem, problem_responses
from agentloom_gateway.estimates import estimate_graph
from agentloom_gateway.routes.graphs import GraphId, PageSize, PageToken
from agentloom_gateway.routes.presets import apply_preset

router = APIRouter(tags=["executions"])

ExecutionId = Annotated[uuid.UUID, Path(description="Execution id.")]
GraphVersion = Annotated[int, Path(ge=1, le=schemas.MAX_INT32, description="Graph version.")]
PresetId = Annotated[
    uuid.UUID | None,
    Query(
        description="A preset of this graph: its inputs and credential choices are merged "
        "under the call's own (the call wins per key); without a version, the preset's runs."
    ),
]
ExecuteBody = Annotated[schemas.ExecuteIn | None, Body()]

_EXECUTE_RESPONSES = problem_responses(402, 403, 404, 409, 422)
_EXECUTE_DESCRIPTION = (
    "Checks the balance (402 with `balance` when it is used up), then queues an execution. "
    "An invalid graph or inputs answer 400 with `node_errors`."
)


async def _execute(
    principal: Principal,
    services: Services,
    graph_id: uuid.UUID,
    graph_version: int,
    body: schemas.ExecuteIn | None,
    preset_id: uuid.UUID | None,
    response: Response,
) -> schemas.Execution:
    body = body or schemas.ExecuteIn()
    if preset_id is not None:
        graph_version, body = await apply_preset(
            services, principal.user_id, graph_id, graph_version, preset_id, body
        )
    check = await services.balance.check(principal.user_id)
    if not check.sufficient:
        # Only on this path: the estimate costs two calls the hot path does not make.
        _graph, estimate = await estimate_graph(
            services, principal.user_id, graph_id, graph_version
        )
        raise ApiProblem(
            402,
            "INSUFFICIENT_CREDITS",
            "the balance is used up: top up to run graphs",
            members={"balance": check.balance, "estimated_cost": estimate.total_credits},
        )
    request = executor_pb2.CreateExecutionRequest(
        user_id=principal.user_id,
        graph_id=str(graph_id),
        graph_version=graph_version,
        inputs_json=json.dumps(body.inputs),
        credentials_inputs_json=json.dumps(body.credentials_inputs),
        max_credits=body.max_credits,
    )
    reply: executor_pb2.CreateExecutionResponse = await services.executions.CreateExecution(request)
    response.headers["Location"] = f"/api/executions/{reply.execution.id}"
    return convert.execution(reply.execution)


@router.post(
    "/graphs/{graph_id}/execute",
    status_code=201,
    summary="Execute the active version of a graph",
    description=_EXECUTE_DESCRIPTION,
    responses=_EXECUTE_RESPONSES,
    dependencies=[requires("executions:write", route_class="execute")],
)
async def execute_graph(
    graph_id: GraphId,
    principal: PrincipalDep,
    services: ServicesDep,
    response: Response,
    body: ExecuteBody = None,
    preset_id: PresetId = None,
) -> schemas.Execution:
    return await _execute(principal, services, graph_id, 0, body, preset_id, response)


@router.post(
    "/graphs/{graph_id}/execute/{graph_version}",
    status_code=201,
    summary="Execute a given version of a graph",
    description=_EXECUTE_DESCRIPTION,
    responses=_EXECUTE_RESPONSES,
    dependencies=[requires("executions:write", route_class="execute")],
)
async def execute_graph_version(
    graph_id: GraphId,
    graph_version: GraphVersion,
    principal: PrincipalDep,
    services: ServicesDep,
    response: Response,
    body: ExecuteBody = None,
    preset_id: PresetId = None,
) -> schemas.Execution:
    return await _execute(principal, services, graph_id, graph_version, body, preset_id, response)


@router.post(
    "/graphs/{graph_id}/executions/{graph_exec_id}/stop",
    summary="Stop an execution (idempotent)",
    responses=problem_responses(403, 404),
    dependencies=[requires("executions:write")],
)
async def stop_execution(
    graph_id: GraphId,
    graph_exec_id: ExecutionId,
    principal: PrincipalDep,
    services: ServicesDep,
) -> schemas.Execution:
    request = executor_pb2.StopExecutionRequest(
        user_id=principal.user_id, execution_id=str(graph_exec_id), graph_id=str(graph_id)
    )
    reply: executor_pb2.StopExecutionResponse = await services.executions.StopExecution(request)
    return convert.execution(reply.execution)


@router.get(
    "/executions",
    summary="List executions, newest first",
    responses=problem_responses(403),
    dependencies=[requires("executions:read")],
)
async def list_executions(
    principal: PrincipalDep,
    services: ServicesDep,
    graph_id: Annotated[uuid.UUID | None, Query(description="Only this graph's.")] = None,
    page_size: PageSize = 20,
    page_token: PageToken = "",
) -> schemas.ExecutionList:
    request = executor_pb2.ListExecutionsRequest(
        user_id=principal.user_id,
        graph_id=str(graph_id) if graph_id else "",
        page_size=page_size,
        page_token=page_token,
    )
    reply: executor_pb2.ListExecutionsResponse = await services.executions.ListExecutions(request)
    return schemas.ExecutionList(
        executions=[convert.execution(execution) for execution in reply.executions],
        next_page_token=reply.next_page_token or None,
    )


@router.get(
    "/executions/{exec_id}",
    summary="Get an execution",
    responses=problem_responses(403, 404),
    dependencies=[requires("executions:read")],
)
async def get_execution(
    exec_id: ExecutionId, principal: PrincipalDep, services: ServicesDep
) -> schemas.Execution:
    request = executor_pb2.GetExecutionRequest(user_id=principal.user_id, execution_id=str(exec_id))
    reply: executor_pb2.GetExecutionResponse = await services.executions.GetExecution(request)
    return convert.execution(reply.execution)


@router.get(
    "/executions/{exec_id}/results",
    summary="Get an execution with its graph outputs and node executions",
    responses=problem_responses(403, 404),
    dependencies=[requires("executions:read")],
)
async def get_execution_results(
    exec_id: ExecutionId, principal: PrincipalDep, services: ServicesDep
) -> schemas.ExecutionResults:
    request = executor_pb2.GetExecutionResultsRequest(
        user_id=principal.user_id, execution_id=str(exec_id)
    )
    reply: executor_pb2.GetExecutionResultsResponse = await services.executions.GetExecutionResults(
        request
    )
    return convert.execution_results(reply.execution, reply.node_executions)
