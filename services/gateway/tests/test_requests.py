"""What a client sees for bad requests, limits, unknown paths, and downstream outages."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

PROBLEM = "application/problem+json"
GRAPH = {
    "name": "summary",
    "description": "",
    "nodes": [{"id": "a", "block_id": "text_input_block"}],
    "links": [],
}


def _problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM
    body: dict[str, Any] = response.json()
    assert body["code"] == code
    assert body["status"] == status
    assert body["request_id"] == response.headers["x-request-id"]
    return body


async def test_malformed_json_is_a_400_problem(client: httpx.AsyncClient, caller: Any) -> None:
    response = await client.post(
        "/api/graphs",
        content=b'{"name": "x", "nodes": [',
        headers={**caller.headers, "Content-Type": "application/json"},
    )
    _problem(response, 400, "MALFORMED_JSON")


async def test_invalid_body_is_a_422_with_field_paths(
    client: httpx.AsyncClient, caller: Any
) -> None:
    body = {"name": "x", "nodes": [{"id": "a"}], "links": [{"source_id": "a"}]}
    response = await client.post("/api/graphs", json=body, headers=caller.headers)
    problem = _problem(response, 422, "VALIDATION_ERROR")
    fields = {error["field"] for error in problem["errors"]}
    assert "body.nodes.0.block_id" in fields
    assert "body.links.0.sink_id" in fields


async def test_unknown_node_fields_are_rejected(client: httpx.AsyncClient, caller: Any) -> None:
    body = {"name": "x", "nodes": [{"id": "a", "block_id": "b", "input_defaults": {}}]}
    response = await client.post("/api/graphs", json=body, headers=caller.headers)
    problem = _problem(response, 422, "VALIDATION_ERROR")
    assert problem["errors"][0]["field"] == "body.nodes.0.input_defaults"


async def test_a_graph_past_the_node_limit_is_a_422(client: httpx.AsyncClient, caller: Any) -> None:
    nodes = [{"id": f"n{i}", "block_id": "b"} for i in range(501)]
    response = await client.post(
        "/api/graphs", json={"name": "big", "nodes": nodes}, headers=caller.headers
    )
    problem = _problem(response, 422, "VALIDATION_ERROR")
    assert problem["errors"] == [{"field": "body.nodes", "message": "too many nodes"}]


@pytest.mark.parametrize(
    "path",
    [
        "/api/graphs/not-a-uuid",
        "/api/graphs/1/versions",
        "/api/executions/%00",
        "/api/executions/' OR 1=1 --/results",
        f"/api/graphs/{uuid.uuid4()}/execute/abc",
        f"/api/graphs/{uuid.uuid4()}/execute/0",
        f"/api/graphs/{uuid.uuid4()}/execute/99999999999",
        "/api/blocks/" + "x" * 300,
        "/api/blocks/..%2F..%2Fetc",
        "/api/user/api-keys/nope",
    ],
)
async def test_weird_path_ids_are_404(client: httpx.AsyncClient, caller: Any, path: str) -> None:
    method = "POST" if "/execute" in path else "GET"
    response = await client.request(method, path, headers=caller.headers, json={})
    _problem(response, 404, "NOT_FOUND")


async def test_unknown_route_is_a_404_problem(client: httpx.AsyncClient) -> None:
    _problem(await client.get("/nowhere"), 404, "NOT_FOUND")
    _problem(await client.get("/api/nowhere"), 404, "NOT_FOUND")


async def test_wrong_method_is_a_405_problem(client: httpx.AsyncClient) -> None:
    response = await client.delete("/api/blocks")
    _problem(response, 405, "METHOD_NOT_ALLOWED")
    assert "GET" in response.headers["allow"]


async def test_a_2_mb_body_is_a_413(client: httpx.AsyncClient) -> None:
    body = b'{"name": "' + b"x" * 2_000_000 + b'"}'
    response = await client.post(
        "/api/graphs", content=body, headers={"Content-Type": "application/json"}
    )
    _problem(response, 413, "PAYLOAD_TOO_LARGE")


async def test_a_2_mb_body_streamed_without_length_is_a_413(client: httpx.AsyncClient) -> None:
    async def chunks() -> AsyncIterator[bytes]:
        for _ in range(32):
            yield b" " * 65_536

    response = await client.post(
        "/api/graphs", content=chunks(), headers={"Content-Type": "application/json"}
    )
    assert "content-length" not in response.request.headers
    _problem(response, 413, "PAYLOAD_TOO_LARGE")


async def test_a_body_under_the_limit_passes(client: httpx.AsyncClient, caller: Any) -> None:
    body = {"name": "x", "description": "d" * 9_000, "nodes": "not a list"}
    response = await client.post("/api/graphs", json=body, headers=caller.headers)
    _problem(response, 422, "VALIDATION_ERROR")


def _nested(depth: int) -> bytes:
    return b'{"name": "x", "nodes": [], "metadata": ' + b"[" * depth + b"]" * depth + b"}"


async def test_json_nested_past_64_levels_is_a_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/graphs", content=_nested(64), headers={"Content-Type": "application/json"}
    )
    _problem(response, 400, "JSON_TOO_DEEP")


async def test_json_nested_64_levels_is_accepted(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/api/graphs", content=_nested(63), headers={"Content-Type": "application/json"}
    )
    _problem(response, 401, "UNAUTHENTICATED")


async def test_a_very_deep_document_never_crashes(client: httpx.AsyncClient) -> None:
    body = b"[" * 500_000 + b"]" * 500_000
    response = await client.post(
        "/api/graphs", content=body, headers={"Content-Type": "application/json"}
    )
    _problem(response, 400, "JSON_TOO_DEEP")


async def test_a_sane_request_id_is_echoed(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": "req-123.abc"})
    assert response.headers["x-request-id"] == "req-123.abc"


@pytest.mark.parametrize("given", ["has spaces", "x" * 200, "<script>", "a\tb"])
async def test_an_insane_request_id_is_replaced(client: httpx.AsyncClient, given: str) -> None:
    response = await client.get("/healthz", headers={"X-Request-ID": given})
    assert response.headers["x-request-id"] not in ("", given)
    assert len(response.headers["x-request-id"]) == 32


async def test_a_malformed_preset_id_is_422_naming_it(
    client: httpx.AsyncClient, caller: Any
) -> None:
    response = await client.post(
        f"/api/graphs/{uuid.uuid4()}/execute",
        params={"preset_id": "p1"},
        json={"inputs": {}},
        headers=caller.headers,
    )
    body = _problem(response, 422, "VALIDATION_ERROR")
    assert any(error["field"] == "query.preset_id" for error in body["errors"]), body


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("POST", "/api/graphs", GRAPH),
        ("GET", "/api/graphs", None),
        ("GET", "/api/graphs/{id}", None),
        ("PUT", "/api/graphs/{id}", GRAPH),
        ("DELETE", "/api/graphs/{id}", None),
        ("GET", "/api/graphs/{id}/versions", None),
        ("PUT", "/api/graphs/{id}/versions/active", {"active_graph_version": 2}),
        ("POST", "/api/graphs/{id}/execute", {"inputs": {"text": "hi"}}),
        ("POST", "/api/graphs/{id}/execute/3", None),
        ("POST", "/api/graphs/{id}/executions/{id}/stop", None),
        ("GET", "/api/executions", None),
        ("GET", "/api/executions/{id}", None),
        ("GET", "/api/executions/{id}/results", None),
        ("GET", "/api/blocks", None),
        ("GET", "/api/blocks/llm_call_block", None),
        ("GET", "/api/user/credits", None),
    ],
)
async def test_a_downstream_outage_is_a_503_problem(
    client: httpx.AsyncClient, caller: Any, method: str, path: str, body: Any
) -> None:
    path = path.replace("{id}", str(uuid.uuid4()))
    response = await client.request(method, path, json=body, headers=caller.headers)
    problem = _problem(response, 503, "SERVICE_UNAVAILABLE")
    assert response.headers["retry-after"] == "1"
    assert "127.0.0.1" not in problem.get("detail", "")


async def test_if_match_must_be_a_version(client: httpx.AsyncClient, caller: Any) -> None:
    response = await client.put(
        f"/api/graphs/{uuid.uuid4()}", json=GRAPH, headers={**caller.headers, "If-Match": "abc"}
    )
    problem = _problem(response, 422, "VALIDATION_ERROR")
    assert problem["errors"][0]["field"] == "header.if-match"


async def test_readiness_checks_the_database(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200
    assert response.json() == {"status": "ready"}
