"""Scopes on every route, API key management (scopes, suspension, revocation), the admin
API, and rate limits in Redis (429 with headers; Redis down: execute fails closed, reads
keep working)."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from fastapi.routing import iter_route_contexts

from agentloom_gateway import identity
from agentloom_gateway.access import route_requirement
from agentloom_gateway.app import create_app
from agentloom_gateway.scopes import ALL_SCOPES, USER_SCOPES
from agentloom_gateway.settings import GatewaySettings

KEYS = "/api/user/api-keys"


def test_every_api_route_declares_a_known_scope() -> None:
    app = create_app(GatewaySettings())
    routes = [r for r in iter_route_contexts(app.routes) if (r.path or "").startswith("/api")]
    assert len(routes) >= 30
    for route in routes:
        requirement = route_requirement(route)
        assert requirement is not None, f"{route.path} declares no scope"
        assert requirement.scope in ALL_SCOPES
    document = app.openapi()
    for path, operations in document["paths"].items():
        for operation in operations.values():
            if path.startswith("/api"):
                assert operation["x-required-scope"] in ALL_SCOPES


async def test_a_key_lacking_the_scope_gets_403_and_one_having_it_passes(
    client: httpx.AsyncClient, make_caller: Any
) -> None:
    reader = await make_caller(scopes=["profile:read"])
    assert (await client.get("/api/user", headers=reader.headers)).status_code == 200
    for method, path in (("PUT", "/api/user"), ("GET", KEYS), ("GET", "/api/user/credits")):
        response = await client.request(method, path, headers=reader.headers, json={})
        assert response.status_code == 403, (path, response.text)
        assert response.json()["code"] == "INSUFFICIENT_SCOPE"


async def test_a_key_never_gets_more_than_its_creator(
    client: httpx.AsyncClient, make_caller: Any
) -> None:
    manager = await make_caller(scopes=["api_keys:manage", "graphs:read"])
    beyond = await client.post(
        KEYS, json={"name": "k", "scopes": ["graphs:write"]}, headers=manager.headers
    )
    assert beyond.status_code == 422
    default = await client.post(KEYS, json={"name": "k"}, headers=manager.headers)
    assert default.status_code == 201
    assert sorted(default.json()["scopes"]) == ["api_keys:manage", "graphs:read"]
    admin_scope = await client.post(
        KEYS, json={"name": "k", "scopes": ["admin"]}, headers=manager.headers
    )
    assert admin_scope.status_code == 422


async def test_keys_are_rescoped_suspended_resumed_and_revoked(
    client: httpx.AsyncClient, caller: Any
) -> None:
    created = await client.post(KEYS, json={"name": "<i>ci</i> key"}, headers=caller.headers)
    assert created.status_code == 201
    key = created.json()
    assert key["name"] == "ci key"
    assert sorted(key["scopes"]) == sorted(USER_SCOPES)
    headers = {"Authorization": f"Bearer {key['api_key']}"}
    path = f"{KEYS}/{key['id']}"
    assert (await client.get("/api/user", headers=headers)).status_code == 200
    narrowed = await client.patch(path, json={"scopes": ["graphs:read"]}, headers=caller.headers)
    assert narrowed.json()["scopes"] == ["graphs:read"]
    assert (await client.get("/api/user", headers=headers)).status_code == 403
    await client.patch(path, json={"scopes": ["profile:read"]}, headers=caller.headers)
    suspended = await client.post(f"{path}/suspend", headers=caller.headers)
    assert suspended.json()["suspended_at"] is not None
    assert (await client.get("/api/user", headers=headers)).status_code == 401
    await client.post(f"{path}/resume", headers=caller.headers)
    assert (await client.get("/api/user", headers=headers)).status_code == 200
    listed = (await client.get(KEYS, headers=caller.headers)).json()["api_keys"]
    assert any(k["id"] == key["id"] and k["last_used_at"] for k in listed)
    assert all("api_key" not in k for k in listed)
    assert (await client.delete(path, headers=caller.headers)).status_code == 204
    assert (await client.get("/api/user", headers=headers)).status_code == 401
    assert (await client.post(f"{path}/resume", headers=caller.headers)).status_code == 200
    assert (await client.get("/api/user", headers=headers)).status_code == 401  # still revoked


async def test_another_users_key_ids_look_missing(
    client: httpx.AsyncClient, make_caller: Any
) -> None:
    alice, bob = await make_caller(), await make_caller()
    for method, suffix in (("GET", ""), ("PATCH", ""), ("POST", "/suspend"), ("DELETE", "")):
        response = await client.request(
            method, f"{KEYS}/{alice.key_id}{suffix}", headers=bob.headers, json={}
        )
        assert response.status_code == 404, (method, suffix, response.text)
    assert (await client.get("/api/user", headers=alice.headers)).status_code == 200


@pytest.fixture
async def admin(sessions: Any, pepper: bytes) -> dict[str, str]:
    async with sessions.begin() as session:
        user = await identity.create_user(
            session=session, email=f"{uuid.uuid4().hex[:8]}@admin.example", name="A", role="admin"
        )
        key = await identity.create_api_key(
            session=session, user_id=user.id, name="admin", pepper=pepper, scopes=["admin"]
        )
    return {"Authorization": f"Bearer {key.api_key}"}


async def test_the_admin_api_is_admin_only(
    client: httpx.AsyncClient, caller: Any, admin: dict[str, str]
) -> None:
    for method, path in (
        ("GET", "/api/admin/users"),
        ("POST", "/api/admin/users"),
        ("POST", f"/api/admin/users/{caller.user_id}/suspend"),
    ):
        response = await client.request(method, path, headers=caller.headers, json={"name": "x"})
        assert response.status_code == 403, response.text
    users = await client.get("/api/admin/users", params={"page_size": 100}, headers=admin)
    assert users.status_code == 200
    assert caller.user_id in {u["id"] for u in users.json()["users"]}


async def test_an_admin_creates_users_and_keys_and_suspends_them(
    client: httpx.AsyncClient, admin: dict[str, str]
) -> None:
    email = f"{uuid.uuid4().hex[:8]}@example.com"
    created = await client.post(
        "/api/admin/users", json={"email": email, "name": "<b>Carol</b>"}, headers=admin
    )
    assert created.status_code == 201, created.text
    carol = created.json()
    assert (carol["name"], carol["role"]) == ("Carol", "user")
    again = await client.post("/api/admin/users", json={"email": email, "name": "C"}, headers=admin)
    assert again.status_code == 409
    key = await client.post(
        f"/api/admin/users/{carol['id']}/api-keys", json={"name": "k"}, headers=admin
    )
    assert key.status_code == 201
    carol_headers = {"X-API-Key": key.json()["api_key"]}
    assert (await client.get("/api/user", headers=carol_headers)).json()["id"] == carol["id"]
    no_admin = await client.post(
        f"/api/admin/users/{carol['id']}/api-keys",
        json={"name": "k", "scopes": ["admin"]},
        headers=admin,
    )
    assert no_admin.status_code == 422
    await client.post(f"/api/admin/users/{carol['id']}/suspend", headers=admin)
    assert (await client.get("/api/user", headers=carol_headers)).status_code == 401
    await client.post(f"/api/admin/users/{carol['id']}/reinstate", headers=admin)
    assert (await client.get("/api/user", headers=carol_headers)).status_code == 200
    missing = await client.get(f"/api/admin/users/{uuid.uuid4()}", headers=admin)
    assert missing.status_code == 404


@contextlib.asynccontextmanager
async def _client_with(
    settings: GatewaySettings, **changes: Any
) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(settings.model_copy(update=changes))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


async def test_past_the_limit_a_principal_gets_429_with_headers(
    settings: GatewaySettings, make_caller: Any
) -> None:
    alice, bob = await make_caller(), await make_caller()
    prefix = f"test:{uuid.uuid4().hex}:"
    async with _client_with(settings, rate_limit_read=3, rate_limit_prefix=prefix) as client:
        for remaining in (2, 1, 0):
            response = await client.get("/api/user", headers=alice.headers)
            assert response.status_code == 200
            assert response.headers["ratelimit-limit"] == "3"
            assert response.headers["ratelimit-remaining"] == str(remaining)
        refused = await client.get("/api/user", headers=alice.headers)
        assert refused.status_code == 429
        assert refused.json()["code"] == "RATE_LIMITED"
        assert 1 <= int(refused.headers["retry-after"]) <= settings.rate_limit_window_s
        assert refused.headers["ratelimit-remaining"] == "0"
        # Another principal, and another route class, have budgets of their own.
        assert (await client.get("/api/user", headers=bob.headers)).status_code == 200
        update = await client.put("/api/user", json={}, headers=alice.headers)
        assert update.status_code == 200


async def test_redis_down_fails_executions_closed_and_keeps_reads(
    settings: GatewaySettings, caller: Any
) -> None:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        dead = f"redis://127.0.0.1:{probe.getsockname()[1]}/0"
    async with _client_with(settings, redis_url=dead) as client:
        read = await client.get("/api/user", headers=caller.headers)
        assert read.status_code == 200
        assert "ratelimit-limit" not in read.headers
        execute = await client.post(f"/api/graphs/{uuid.uuid4()}/execute", headers=caller.headers)
        assert execute.status_code == 503
        assert execute.headers["retry-after"]
        assert execute.json()["detail"] == "rate limiting is unavailable"
