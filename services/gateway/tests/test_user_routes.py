"""/api/user and /api/user/api-keys, which the gateway serves from its own schema."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from agentloom_gateway import apikeys
from agentloom_gateway.app import create_app
from agentloom_gateway.settings import GatewaySettings


async def test_update_user_changes_name_and_timezone(
    client: httpx.AsyncClient, caller: Any
) -> None:
    response = await client.put(
        "/api/user", json={"name": "Grace", "timezone": "Europe/Paris"}, headers=caller.headers
    )
    assert response.status_code == 200, response.text
    assert (await client.get("/api/user", headers=caller.headers)).json()["timezone"] == (
        "Europe/Paris"
    )


async def test_update_user_rejects_unknown_zone_and_owner_fields(
    client: httpx.AsyncClient, caller: Any
) -> None:
    zone = await client.put("/api/user", json={"timezone": "Nowhere/Town"}, headers=caller.headers)
    assert zone.status_code == 422
    assert zone.json()["errors"][0]["field"] == "body.timezone"
    role = await client.put("/api/user", json={"role": "admin"}, headers=caller.headers)
    assert role.status_code == 422
    assert (await client.get("/api/user", headers=caller.headers)).json()["role"] == "user"


async def test_api_key_lifecycle(client: httpx.AsyncClient, caller: Any) -> None:
    created = await client.post(
        "/api/user/api-keys", json={"name": "laptop"}, headers=caller.headers
    )
    assert created.status_code == 201, created.text
    key = created.json()
    assert apikeys.parse(key["api_key"]) is not None
    assert created.headers["location"] == f"/api/user/api-keys/{key['id']}"
    assert key["api_key"].startswith(key["prefix"] + "_")
    new_headers = {"X-API-Key": key["api_key"]}
    assert (await client.get("/api/user", headers=new_headers)).json()["id"] == caller.user_id

    listed = (await client.get("/api/user/api-keys", headers=caller.headers)).json()["api_keys"]
    assert {entry["id"] for entry in listed} == {caller.key_id, key["id"]}
    assert all("api_key" not in entry for entry in listed)
    used = next(entry for entry in listed if entry["id"] == key["id"])
    assert used["last_used_at"] is not None

    revoked = await client.delete(f"/api/user/api-keys/{key['id']}", headers=caller.headers)
    assert revoked.status_code == 204
    again = await client.delete(f"/api/user/api-keys/{key['id']}", headers=caller.headers)
    assert again.status_code == 204
    assert (await client.get("/api/user", headers=new_headers)).status_code == 401
    shown = await client.get(f"/api/user/api-keys/{key['id']}", headers=caller.headers)
    assert shown.json()["revoked_at"] is not None


async def test_another_users_key_is_a_404(
    client: httpx.AsyncClient, caller: Any, make_caller: Any
) -> None:
    stranger = await make_caller()
    for method in ("GET", "DELETE"):
        response = await client.request(
            method, f"/api/user/api-keys/{stranger.key_id}", headers=caller.headers
        )
        unknown = await client.request(
            method, f"/api/user/api-keys/{uuid.uuid4()}", headers=caller.headers
        )
        assert response.status_code == unknown.status_code == 404
        assert response.json()["detail"] == unknown.json()["detail"]
    assert (await client.get("/api/user", headers=stranger.headers)).status_code == 200


async def test_api_key_expiry_must_be_in_the_future(client: httpx.AsyncClient, caller: Any) -> None:
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    response = await client.post(
        "/api/user/api-keys", json={"name": "old", "expires_at": past}, headers=caller.headers
    )
    assert response.status_code == 422
    assert response.json()["errors"][0]["field"] == "body.expires_at"


async def test_a_database_outage_is_a_503(settings: GatewaySettings) -> None:
    app = create_app(
        settings.model_copy(
            update={"database_url": "postgresql+asyncpg://postgres@127.0.0.1:1/none"}
        )
    )
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            key = apikeys.generate()[0]
            response = await client.get("/api/user", headers={"X-API-Key": key})
            assert response.status_code == 503, response.text
            assert response.headers["content-type"] == "application/problem+json"
            assert response.headers["retry-after"] == "1"
            assert (await client.get("/readyz")).status_code == 503
            assert (await client.get("/healthz")).status_code == 200
