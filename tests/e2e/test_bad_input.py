"""Bad input gets a clear problem+json error and changes nothing; no request gets a 500."""

from __future__ import annotations

import uuid

import httpx
import pytest
from helpers import User, graph, link, node

from agentloom_devkit.stack import Stack

PROBLEM = "application/problem+json"


@pytest.fixture
async def http(stack: Stack, alice: User) -> httpx.AsyncClient:
    client = httpx.AsyncClient(
        base_url=stack.gateway_url, headers={"Authorization": f"Bearer {alice.api_key}"}
    )
    yield client
    await client.aclose()


async def _graph_count(http: httpx.AsyncClient) -> int:
    response = await http.get("/api/graphs", params={"page_size": 100})
    assert response.status_code == 200
    return len(response.json()["graphs"])


def _problem(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(PROBLEM)
    body = response.json()
    assert body["status"] == status and body["code"] and body["request_id"]
    return body


async def test_malformed_json_is_400_and_creates_nothing(http: httpx.AsyncClient) -> None:
    before = await _graph_count(http)
    response = await http.post(
        "/api/graphs",
        content=b'{"name": "x", "nodes": [',
        headers={"Content-Type": "application/json"},
    )
    _problem(response, 400)
    assert await _graph_count(http) == before


async def test_unknown_block_is_400_with_node_errors(http: httpx.AsyncClient) -> None:
    before = await _graph_count(http)
    spec = graph("bad", [node("n1", "no_such_block")], [])
    body = _problem(await http.post("/api/graphs", json=spec), 400)
    assert "n1" in body["node_errors"]
    assert await _graph_count(http) == before


async def test_link_to_missing_node_or_pin_is_400_with_node_errors(http: httpx.AsyncClient) -> None:
    spec = graph(
        "bad-links",
        [node("in", "text_input_block"), node("t", "text_template_block", template="x")],
        [link("in", "text", "ghost", "x"), link("in", "no_such_pin", "t", "x")],
    )
    body = _problem(await http.post("/api/graphs", json=spec), 400)
    errors = body["node_errors"]
    assert any("ghost" in str(v) for v in errors.values()) or "ghost" in errors
    assert any("no_such_pin" in str(k) + str(v) for k, v in errors.items())


async def test_missing_or_wrong_api_key_is_401(stack: Stack) -> None:
    async with httpx.AsyncClient(base_url=stack.gateway_url) as anonymous:
        _problem(await anonymous.get("/api/graphs"), 401)
        _problem(await anonymous.get("/api/graphs", headers={"X-API-Key": "agl_nope"}), 401)
        wrong = "agl_AAAAAAAAAAAAAAAA_" + "B" * 43 + "_000000"
        _problem(
            await anonymous.get("/api/graphs", headers={"Authorization": f"Bearer {wrong}"}), 401
        )


async def test_unknown_graph_and_execution_are_404(http: httpx.AsyncClient) -> None:
    missing = str(uuid.uuid4())
    _problem(await http.get(f"/api/graphs/{missing}"), 404)
    _problem(await http.post(f"/api/graphs/{missing}/execute", json={"inputs": {}}), 404)
    _problem(await http.get(f"/api/executions/{missing}"), 404)
    _problem(await http.get(f"/api/executions/{missing}/results"), 404)
    _problem(await http.get("/api/executions/not-a-uuid"), 404)
    _problem(await http.get("/api/graphs/not-a-uuid"), 404)


async def test_another_users_graph_and_execution_answer_404(
    http: httpx.AsyncClient, stack: Stack, bob: User
) -> None:
    spec = graph("mine", [node("in", "text_input_block")], [])
    created = (await http.post("/api/graphs", json=spec)).json()
    execution = (
        await http.post(f"/api/graphs/{created['id']}/execute", json={"inputs": {"text": "x"}})
    ).json()
    async with httpx.AsyncClient(
        base_url=stack.gateway_url, headers={"X-API-Key": bob.api_key}
    ) as other:
        _problem(await other.get(f"/api/graphs/{created['id']}"), 404)
        _problem(await other.post(f"/api/graphs/{created['id']}/execute", json={}), 404)
        _problem(await other.get(f"/api/executions/{execution['id']}"), 404)
        _problem(
            await other.post(f"/api/graphs/{created['id']}/executions/{execution['id']}/stop"),
            404,
        )
        listing = (await other.get("/api/executions")).json()
        assert all(e["id"] != execution["id"] for e in listing["executions"])


async def test_missing_required_input_is_400_and_starts_nothing(http: httpx.AsyncClient) -> None:
    spec = graph("needs-input", [node("in", "text_input_block", name="topic")], [])
    created = (await http.post("/api/graphs", json=spec)).json()
    before = (await http.get("/api/executions", params={"graph_id": created["id"]})).json()
    body = _problem(
        await http.post(f"/api/graphs/{created['id']}/execute", json={"inputs": {}}), 400
    )
    assert "topic" in body["detail"]
    _problem(
        await http.post(
            f"/api/graphs/{created['id']}/execute", json={"inputs": {"nope": 1, "topic": "x"}}
        ),
        400,
    )
    after = (await http.get("/api/executions", params={"graph_id": created["id"]})).json()
    assert after["executions"] == before["executions"] == []


async def test_wrong_body_types_are_422_with_the_field(http: httpx.AsyncClient) -> None:
    body = _problem(await http.post("/api/graphs", json={"name": 5, "nodes": "x"}), 422)
    fields = {error["field"] for error in body["errors"]}
    assert any("nodes" in field for field in fields)
