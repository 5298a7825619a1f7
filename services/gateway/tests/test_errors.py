"""The one table from gRPC status (plus ErrorInfo) to HTTP problem, and its rendering."""

from __future__ import annotations

import json
from typing import Any

import grpc
import httpx
import pytest
from fastapi import FastAPI
from google.protobuf import any_pb2
from google.rpc import error_details_pb2, status_pb2

from agentloom_common.errors import STATUS_DETAILS_KEY, error_info
from agentloom_gateway.app import create_app
from agentloom_gateway.errors import rpc_problem
from agentloom_gateway.settings import GatewaySettings

Code = grpc.StatusCode


@pytest.mark.parametrize(
    ("code", "reason", "status", "problem_code"),
    [
        (Code.NOT_FOUND, "GRAPH_NOT_FOUND", 404, "GRAPH_NOT_FOUND"),
        (Code.NOT_FOUND, "", 404, "NOT_FOUND"),
        (Code.INVALID_ARGUMENT, "", 400, "INVALID_ARGUMENT"),
        (Code.INVALID_ARGUMENT, "GRAPH_INVALID", 400, "GRAPH_INVALID"),
        (Code.ALREADY_EXISTS, "", 409, "ALREADY_EXISTS"),
        (Code.ABORTED, "", 409, "CONFLICT"),
        (Code.ABORTED, "VERSION_CONFLICT", 409, "VERSION_CONFLICT"),
        (Code.FAILED_PRECONDITION, "", 409, "FAILED_PRECONDITION"),
        (Code.FAILED_PRECONDITION, "INSUFFICIENT_CREDITS", 402, "INSUFFICIENT_CREDITS"),
        (Code.PERMISSION_DENIED, "", 403, "FORBIDDEN"),
        (Code.UNAUTHENTICATED, "", 401, "UNAUTHENTICATED"),
        (Code.RESOURCE_EXHAUSTED, "", 429, "RATE_LIMITED"),
        (Code.UNAVAILABLE, "", 503, "SERVICE_UNAVAILABLE"),
        (Code.DEADLINE_EXCEEDED, "", 503, "SERVICE_UNAVAILABLE"),
        (Code.INTERNAL, "", 500, "INTERNAL"),
        (Code.UNKNOWN, "", 500, "INTERNAL"),
        (Code.UNIMPLEMENTED, "", 500, "INTERNAL"),
        (Code.DATA_LOSS, "DB_GONE", 500, "INTERNAL"),
        (Code.CANCELLED, "", 500, "INTERNAL"),
        (Code.NOT_FOUND, "lower case is not a code", 404, "NOT_FOUND"),
    ],
)
def test_status_table(code: Code, reason: str, status: int, problem_code: str) -> None:
    problem = rpc_problem(code, reason, {}, "downstream says why")
    assert (problem.status, problem.code) == (status, problem_code)


def test_server_errors_hide_the_downstream_message() -> None:
    for code in (Code.INTERNAL, Code.UNAVAILABLE, Code.DEADLINE_EXCEEDED):
        problem = rpc_problem(code, "", {}, "failed to connect to 10.0.0.7:50051")
        assert "10.0.0.7" not in (problem.detail or "")


def test_client_errors_keep_the_downstream_message() -> None:
    assert rpc_problem(Code.NOT_FOUND, "", {}, "graph not found").detail == "graph not found"


def test_unavailable_and_rate_limited_say_when_to_retry() -> None:
    assert rpc_problem(Code.UNAVAILABLE, "", {}, "", retry_after_s=3).headers == {
        "Retry-After": "3"
    }
    limited = rpc_problem(Code.RESOURCE_EXHAUSTED, "", {"retry_after_s": "7"}, "")
    assert limited.headers["Retry-After"] == "7"


def test_unauthenticated_downstream_asks_for_bearer() -> None:
    assert rpc_problem(Code.UNAUTHENTICATED, "", {}, "").headers["WWW-Authenticate"] == "Bearer"


def test_invalid_graph_carries_node_errors() -> None:
    node_errors = {"summarize": {"prompt": "required"}, "n2": {"": "unknown block"}}
    metadata = {"node_errors": json.dumps(node_errors)}
    problem = rpc_problem(Code.INVALID_ARGUMENT, "GRAPH_INVALID", metadata, "graph invalid")
    assert problem.node_errors == node_errors


@pytest.mark.parametrize("raw", ["", "not json", "[1, 2]", '{"n": "flat message"}'])
def test_malformed_node_errors_never_break_the_answer(raw: str) -> None:
    problem = rpc_problem(Code.INVALID_ARGUMENT, "GRAPH_INVALID", {"node_errors": raw}, "bad")
    assert problem.status == 400
    assert isinstance(problem.node_errors, dict)


def test_insufficient_credits_carries_the_balance() -> None:
    problem = rpc_problem(
        Code.FAILED_PRECONDITION, "INSUFFICIENT_CREDITS", {"balance": "-5"}, "top up"
    )
    assert problem.members == {"balance": -5}


def rpc_error(code: Code, message: str, reason: str = "", **metadata: str) -> grpc.aio.AioRpcError:
    """A failed call exactly as grpc.aio raises it, with a google.rpc.Status + ErrorInfo."""
    trailing = grpc.aio.Metadata()
    if reason:
        detail = any_pb2.Any()
        detail.Pack(
            error_details_pb2.ErrorInfo(reason=reason, domain="agentloom.dev", metadata=metadata)
        )
        status = status_pb2.Status(code=code.value[0], message=message, details=[detail])
        trailing = grpc.aio.Metadata((STATUS_DETAILS_KEY, status.SerializeToString()))
    return grpc.aio.AioRpcError(code, grpc.aio.Metadata(), trailing, details=message)


def test_error_info_is_read_from_a_real_rpc_error() -> None:
    error = rpc_error(Code.FAILED_PRECONDITION, "no credits", "INSUFFICIENT_CREDITS", balance="0")
    assert error_info(error) == ("INSUFFICIENT_CREDITS", {"balance": "0"})


@pytest.fixture(scope="module")
async def raising_client(settings: GatewaySettings) -> Any:
    """An app with extra routes that fail on purpose, to see what the client receives."""
    app: FastAPI = create_app(settings)
    failures: dict[str, Exception] = {
        "graph-invalid": rpc_error(
            Code.INVALID_ARGUMENT,
            "graph is invalid",
            "GRAPH_INVALID",
            node_errors=json.dumps({"summarize": {"prompt": "required"}}),
        ),
        "no-credits": rpc_error(
            Code.FAILED_PRECONDITION, "no credits", "INSUFFICIENT_CREDITS", balance="0"
        ),
        "down": rpc_error(Code.UNAVAILABLE, "connection refused to 10.1.2.3:50051"),
        "bug": RuntimeError("secret internals /srv/app.py line 3"),
        "db-bug": __import__("sqlalchemy").exc.IntegrityError("INSERT", {}, Exception("dup")),
    }

    async def fail(name: str) -> None:
        raise failures[name]

    app.add_api_route("/test/fail/{name}", fail)
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


async def test_graph_invalid_answer(raising_client: httpx.AsyncClient) -> None:
    response = await raising_client.get("/test/fail/graph-invalid")
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert body["code"] == "GRAPH_INVALID"
    assert body["node_errors"] == {"summarize": {"prompt": "required"}}
    assert body["request_id"] == response.headers["x-request-id"]
    assert body["title"] == "Bad Request" and body["status"] == 400


async def test_insufficient_credits_answer(raising_client: httpx.AsyncClient) -> None:
    response = await raising_client.get("/test/fail/no-credits")
    assert response.status_code == 402
    assert response.json()["balance"] == 0


async def test_downstream_outage_answer(raising_client: httpx.AsyncClient) -> None:
    response = await raising_client.get("/test/fail/down")
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert "10.1.2.3" not in response.text


@pytest.mark.parametrize("name", ["bug", "db-bug"])
async def test_unexpected_errors_answer_a_generic_500(
    raising_client: httpx.AsyncClient, name: str
) -> None:
    response = await raising_client.get(f"/test/fail/{name}", headers={"X-Request-ID": "abc-1"})
    assert response.status_code == 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.headers["x-request-id"] == "abc-1"
    body = response.json()
    assert body["code"] == "INTERNAL" and body["request_id"] == "abc-1"
    assert "secret" not in response.text and "Traceback" not in response.text
    assert "dup" not in response.text
