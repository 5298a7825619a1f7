"""The authorization matrix, generated from the gateway's route table: every /api route is
called as its owner, as another user (API key and JWT), with the owner's key lacking the
route's scope, and with no credentials. The owner succeeds; the others get 404 (foreign ids
look missing), 403 (scope, admin) or 401, and never the owner's data. A route that declares
no scope, or that this table cannot exercise, fails the test."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts

from agentloom_gateway.access import route_requirement
from agentloom_gateway.app import create_app
from agentloom_gateway.scopes import USER_SCOPES
from agentloom_gateway.settings import GatewaySettings

OPEN_PATHS = {"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect"}
# /api routes open on purpose: authenticated otherwise than by API key or JWT.
OPEN_API_ROUTES = {
    # The incoming-trigger ingress: senders (other systems) hold no API key; each call is
    # signed per Standard Webhooks with the trigger's own secret, and an unsigned or badly
    # signed call is 401 and starts nothing (tests/e2e/test_triggers.py).
    ("POST", "/hooks/triggers/{trigger_id}"),
}


def _route_table() -> list[tuple[str, str, str | None]]:
    """(method, path, required scope) of every route the gateway serves."""
    app = create_app(GatewaySettings())
    table = []
    for route in iter_route_contexts(app.routes):
        requirement = route_requirement(route)
        for method in sorted(route.methods or ()):
            if method != "HEAD":
                table.append(
                    (method, route.path_format or "", requirement.scope if requirement else None)
                )
    return sorted(table)


ROUTES = _route_table()
API_ROUTES = [
    route for route in ROUTES if route[1].startswith("/api") and route[:2] not in OPEN_API_ROUTES
]


def test_every_route_is_open_on_purpose_or_declares_a_scope() -> None:
    assert len(API_ROUTES) >= 30
    for method, path, scope in ROUTES:
        if (method, path) in OPEN_API_ROUTES:
            assert scope is None, f"{method} {path} is open on purpose: it takes no scope"
        elif path.startswith("/api"):
            assert scope is not None, f"{method} {path} has no auth/scope dependency"
        else:
            assert path in OPEN_PATHS, f"{method} {path} is outside /api and not a probe"


@dataclass
class World:
    """Alice's things, each named with a marker no other principal may ever see."""

    marker: str
    graph_id: str = ""
    execution_id: str = ""
    execution_graph_id: str = ""
    key_id: str = ""
    credential_id: str = ""
    target_user_id: str = ""
    preset_id: str = ""
    trigger_id: str = ""
    webhook_id: str = ""
    delivery_id: str = ""
    schedule_id: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def _graph(marker: str) -> dict[str, Any]:
    return {
        "name": f"graph {marker}",
        "description": marker,
        "nodes": [
            {"id": "in", "block_id": "text_input_block", "input_default": {"name": "word"}},
            {"id": "out", "block_id": "output_block", "input_default": {"name": "result"}},
        ],
        "links": [
            {"source_id": "in", "source_name": "text", "sink_id": "out", "sink_name": "value"}
        ],
    }


# (method, path) -> (kind, body); kind: "owned" (others 404), "list" (others see no marker),
# "public" (the same for everyone), "admin" (admins only).
Body = Callable[[World], Any]
CASES: dict[tuple[str, str], tuple[str, Body | None]] = {
    ("GET", "/api/graphs"): ("list", None),
    ("POST", "/api/graphs"): ("list", lambda w: _graph(w.marker)),
    ("GET", "/api/graphs/{graph_id}"): ("owned", None),
    ("PUT", "/api/graphs/{graph_id}"): ("owned", lambda w: _graph(w.marker)),
    ("DELETE", "/api/graphs/{graph_id}"): ("owned", None),
    ("GET", "/api/graphs/{graph_id}/versions"): ("owned", None),
    ("GET", "/api/graphs/{graph_id}/cost-estimate"): ("owned", None),
    ("PUT", "/api/graphs/{graph_id}/versions/active"): (
        "owned",
        lambda w: {"active_graph_version": 1},
    ),
    ("POST", "/api/graphs/{graph_id}/execute"): ("owned", lambda w: {"inputs": {"word": "x"}}),
    ("POST", "/api/graphs/{graph_id}/execute/{graph_version}"): (
        "owned",
        lambda w: {"inputs": {"word": "x"}},
    ),
    ("POST", "/api/graphs/{graph_id}/executions/{graph_exec_id}/stop"): ("owned", None),
    ("GET", "/api/executions"): ("list", None),
    ("GET", "/api/executions/{exec_id}"): ("owned", None),
    ("GET", "/api/executions/{exec_id}/results"): ("owned", None),
    ("GET", "/api/blocks"): ("public", None),
    ("GET", "/api/blocks/{block_id}"): ("public", None),
    ("GET", "/api/user"): ("list", None),
    ("PUT", "/api/user"): ("list", lambda w: {"timezone": "UTC"}),
    ("GET", "/api/user/credits"): ("list", None),
    ("GET", "/api/user/api-keys"): ("list", None),
    ("POST", "/api/user/api-keys"): ("list", lambda w: {"name": f"key {w.marker}"}),
    ("GET", "/api/user/api-keys/{key_id}"): ("owned", None),
    ("PATCH", "/api/user/api-keys/{key_id}"): ("owned", lambda w: {"name": f"k {w.marker}"}),
    ("DELETE", "/api/user/api-keys/{key_id}"): ("owned", None),
    ("POST", "/api/user/api-keys/{key_id}/suspend"): ("owned", None),
    ("POST", "/api/user/api-keys/{key_id}/resume"): ("owned", None),
    ("GET", "/api/integrations/credentials"): ("list", None),
    ("POST", "/api/integrations/credentials"): ("list", lambda w: _credential(w.marker)),
    ("GET", "/api/integrations/credentials/{credential_id}"): ("owned", None),
    ("PATCH", "/api/integrations/credentials/{credential_id}"): (
        "owned",
        lambda w: {"title": f"c {w.marker}"},
    ),
    ("DELETE", "/api/integrations/credentials/{credential_id}"): ("owned", None),
    ("GET", "/api/admin/users"): ("admin", None),
    ("POST", "/api/admin/users"): ("admin", lambda w: {"name": f"user {w.marker}"}),
    ("GET", "/api/admin/users/{user_id}"): ("admin", None),
    ("POST", "/api/admin/users/{user_id}/api-keys"): ("admin", lambda w: {"name": "k"}),
    ("POST", "/api/admin/users/{user_id}/suspend"): ("admin", None),
    ("POST", "/api/admin/users/{user_id}/reinstate"): ("admin", None),
    ("POST", "/api/admin/users/{user_id}/credits"): ("admin", lambda w: {"amount": 5}),
    ("GET", "/api/presets"): ("list", None),
    # Others name alice's graph in the body: it looks missing to them.
    ("POST", "/api/presets"): ("owned", lambda w: _preset(w)),
    ("GET", "/api/presets/{preset_id}"): ("owned", None),
    ("PUT", "/api/presets/{preset_id}"): ("owned", lambda w: {"name": f"p {w.marker}"}),
    ("DELETE", "/api/presets/{preset_id}"): ("owned", None),
    ("POST", "/api/graphs/{graph_id}/triggers"): ("owned", lambda w: {"input_name": "word"}),
    ("GET", "/api/graphs/{graph_id}/triggers"): ("owned", None),
    ("GET", "/api/graphs/{graph_id}/triggers/{trigger_id}"): ("owned", None),
    ("DELETE", "/api/graphs/{graph_id}/triggers/{trigger_id}"): ("owned", None),
    ("POST", "/api/graphs/{graph_id}/triggers/{trigger_id}/enable"): ("owned", None),
    ("POST", "/api/graphs/{graph_id}/triggers/{trigger_id}/disable"): ("owned", None),
    ("GET", "/api/webhooks"): ("list", None),
    ("POST", "/api/webhooks"): ("list", lambda w: {"url": HOOK_URL, "description": w.marker}),
    ("GET", "/api/webhooks/{webhook_id}"): ("owned", None),
    ("DELETE", "/api/webhooks/{webhook_id}"): ("owned", None),
    ("POST", "/api/webhooks/{webhook_id}/enable"): ("owned", None),
    ("GET", "/api/webhooks/{webhook_id}/deliveries"): ("owned", None),
    ("POST", "/api/webhooks/{webhook_id}/deliveries/{delivery_id}/redeliver"): ("owned", None),
    ("POST", "/api/graphs/{graph_id}/schedules"): ("owned", lambda w: _SCHEDULE),
    ("GET", "/api/graphs/{graph_id}/schedules"): ("owned", None),
    ("GET", "/api/schedules"): ("list", None),
    ("GET", "/api/graphs/{graph_id}/schedules/{schedule_id}"): ("owned", None),
    ("DELETE", "/api/graphs/{graph_id}/schedules/{schedule_id}"): ("owned", None),
    ("POST", "/api/graphs/{graph_id}/schedules/{schedule_id}/pause"): ("owned", None),
    ("POST", "/api/graphs/{graph_id}/schedules/{schedule_id}/resume"): ("owned", None),
}
# Yearly: it never fires during the run.
_SCHEDULE = {"cron": "0 0 1 1 *", "inputs": {"word": "w"}}


# Loopback targets are allowed in the test stack; nothing listens on port 9 (deliveries fail).
HOOK_URL = "http://127.0.0.1:9/hook"


async def _webhook_world(
    http: httpx.AsyncClient, alice: Any, world: World, *, with_delivery: bool
) -> None:
    """Alice's webhook endpoint (named by the marker) and, when asked, one delivery of an
    event of an execution of hers that runs after it exists."""
    hook = await _ok(
        http.post(
            "/api/webhooks",
            json={"url": HOOK_URL, "description": world.marker},
            headers=alice.headers,
        )
    )
    world.webhook_id = hook["id"]
    if not with_delivery:
        return
    await _ok(
        http.post(
            f"/api/graphs/{world.graph_id}/execute",
            json={"inputs": {"word": "x"}},
            headers=alice.headers,
        )
    )
    for _ in range(600):
        log = await _ok(
            http.get(f"/api/webhooks/{world.webhook_id}/deliveries", headers=alice.headers)
        )
        if log["deliveries"]:
            world.delivery_id = log["deliveries"][0]["id"]
            return
        await asyncio.sleep(0.05)
    raise AssertionError("no webhook delivery appeared for alice's execution")


def _preset(world: World) -> dict[str, Any]:
    return {"graph_id": world.graph_id, "name": f"preset {world.marker}", "inputs": {"word": "w"}}


def _credential(marker: str) -> dict[str, Any]:
    return {
        "provider": "openai",
        "kind": "api_key",
        "title": f"cred {marker}",
        "secrets": {"api_key": f"sk-{marker}"},
    }


def _fill(path: str, world: World) -> str:
    values = {
        "graph_id": world.execution_graph_id if "executions" in path else world.graph_id,
        "graph_version": "1",
        "graph_exec_id": world.execution_id,
        "exec_id": world.execution_id,
        "block_id": "text_input_block",
        "key_id": world.key_id,
        "credential_id": world.credential_id,
        "user_id": world.target_user_id,
        "preset_id": world.preset_id,
        "trigger_id": world.trigger_id,
        "webhook_id": world.webhook_id,
        "delivery_id": world.delivery_id,
        "schedule_id": world.schedule_id,
    }
    return path.format(**values)


async def _ok(response: Awaitable[httpx.Response]) -> dict[str, Any]:
    answer = await response
    assert answer.status_code in (200, 201), answer.text
    body: dict[str, Any] = answer.json()
    return body


@pytest.fixture(scope="module")
async def execution(stack: Any, alice: Any) -> tuple[str, str]:
    """One finished execution of alice's (graph id, execution id)."""
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as http:
        graph = await _ok(http.post("/api/graphs", json=_graph("run"), headers=alice.headers))
        run = await _ok(
            http.post(
                f"/api/graphs/{graph['id']}/execute",
                json={"inputs": {"word": "x"}},
                headers=alice.headers,
            )
        )
        for _ in range(200):
            status = (await _ok(http.get(f"/api/executions/{run['id']}", headers=alice.headers)))[
                "status"
            ]
            if status in ("COMPLETED", "FAILED", "CANCELLED"):
                break
            await asyncio.sleep(0.05)
        return graph["id"], run["id"]


async def _world(
    http: httpx.AsyncClient, alice: Any, admin: Any, execution: tuple[str, str]
) -> World:
    world = World(marker=f"alice-marker-{uuid.uuid4().hex}")
    graph = await _ok(http.post("/api/graphs", json=_graph(world.marker), headers=alice.headers))
    key = await _ok(
        http.post("/api/user/api-keys", json={"name": world.marker}, headers=alice.headers)
    )
    cred = await _ok(
        http.post(
            "/api/integrations/credentials", json=_credential(world.marker), headers=alice.headers
        )
    )
    target = await _ok(
        http.post("/api/admin/users", json={"name": f"t {world.marker}"}, headers=admin.headers)
    )
    world.graph_id, world.key_id, world.credential_id = graph["id"], key["id"], cred["id"]
    world.execution_graph_id, world.execution_id = execution
    world.target_user_id = target["id"]
    preset = await _ok(http.post("/api/presets", json=_preset(world), headers=alice.headers))
    trigger = await _ok(
        http.post(
            f"/api/graphs/{world.graph_id}/triggers",
            json={"input_name": "word", "description": world.marker},
            headers=alice.headers,
        )
    )
    world.preset_id, world.trigger_id = preset["id"], trigger["id"]
    return world


async def _key_without(http: httpx.AsyncClient, owner: Any, scope: str, admin: bool) -> str:
    """A key of the owner's holding every scope it may have except `scope`."""
    scopes = [s for s in USER_SCOPES if s != scope]
    if admin:
        created = await _ok(
            http.post(
                f"/api/admin/users/{owner.user_id}/api-keys",
                json={"name": "no admin", "scopes": scopes},
                headers=owner.headers,
            )
        )
    else:
        created = await _ok(
            http.post(
                "/api/user/api-keys",
                json={"name": "lacking", "scopes": scopes},
                headers=owner.headers,
            )
        )
    return str(created["api_key"])


@pytest.mark.parametrize(("method", "path", "scope"), API_ROUTES, ids=lambda v: str(v))
async def test_authorization_matrix(
    http: httpx.AsyncClient,
    alice: Any,
    bob: Any,
    bob_jwt: Any,
    admin: Any,
    execution: tuple[str, str],
    method: str,
    path: str,
    scope: str | None,
) -> None:
    assert scope is not None, f"{method} {path} declares no scope"
    case = CASES.get((method, path))
    if case is None:
        assert "{" not in path, f"{method} {path}: add it to CASES (how to own its ids)"
        kind, body_of = ("list", lambda w: {})  # a new route without ids: generic checks
    else:
        kind, body_of = case
    world = await _world(http, alice, admin, execution)
    if path.startswith("/api/webhooks/"):
        await _webhook_world(http, alice, world, with_delivery="{delivery_id}" in path)
    if "{schedule_id}" in path:  # only here: schedules count against a per-user limit
        world.schedule_id = (
            await _ok(
                http.post(
                    f"/api/graphs/{world.graph_id}/schedules",
                    json={**_SCHEDULE, "name": world.marker},
                    headers=alice.headers,
                )
            )
        )["id"]
    url = _fill(path, world)
    body = body_of(world) if body_of else None
    owner = admin if kind == "admin" else alice

    async def call(headers: dict[str, str]) -> httpx.Response:
        return await http.request(method, url, json=body, headers=headers)

    # No credentials.
    assert (await call({})).status_code == 401
    # The owner's key without the route's scope.
    lacking = await _key_without(http, owner, scope, admin=kind == "admin")
    refused = await call({"Authorization": f"Bearer {lacking}"})
    assert refused.status_code == 403, refused.text
    assert refused.json()["code"] == "INSUFFICIENT_SCOPE"
    # Another user, with their API key and with their JWT.
    for other in (bob, bob_jwt):
        response = await call(other.headers)
        expected = {"owned": {404}, "admin": {403}, "list": {200, 201}, "public": {200}}[kind]
        assert response.status_code in expected, (other, response.status_code, response.text)
        if world.marker not in json.dumps(body):  # else it echoes what they sent
            assert world.marker not in response.text
        assert alice.credential not in response.text
    # The owner.
    response = await call(owner.headers)
    assert response.status_code in (200, 201, 202, 204), response.text
    if kind == "owned" and method == "GET" and path.endswith(("_id}", "/versions")):
        if "exec" not in path:
            assert world.marker in response.text  # the owner does see the data
