"""Every /api route demands valid credentials; the list of routes comes from the app itself,
so a route added later cannot be left open."""

from __future__ import annotations

import asyncio
import contextlib
import re
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import iter_route_contexts
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentloom_gateway import apikeys, identity
from agentloom_gateway.app import create_app
from agentloom_gateway.settings import GatewaySettings

OPEN_PATHS = {
    "/healthz",
    "/readyz",
    "/openapi.json",
    "/docs",
    "/docs/oauth2-redirect",
    # Incoming triggers: signed per Standard Webhooks with the trigger's own secret instead.
    "/hooks/triggers/{trigger_id}",
}


def _concrete(path: str) -> str:
    """The route's path with every parameter filled by a well-formed value."""
    return re.sub(
        r"\{(\w+)\}",
        lambda match: "1" if match.group(1) == "graph_version" else str(uuid.uuid4()),
        path,
    )


def _operations(app: FastAPI) -> list[tuple[str, str]]:
    """(method, path) of every route of the app, included routers flattened."""
    return sorted(
        (method, context.path or "")
        for context in iter_route_contexts(app.routes)
        for method in context.methods or ()
        if method != "HEAD"
    )


ALL_OPERATIONS = _operations(create_app(GatewaySettings()))
OPERATIONS = [(method, path) for method, path in ALL_OPERATIONS if path.startswith("/api")]


def test_only_probes_and_docs_are_outside_api() -> None:
    assert len(OPERATIONS) >= 20
    assert {path for _, path in ALL_OPERATIONS if not path.startswith("/api/")} <= OPEN_PATHS


def _unknown_key() -> str:
    return apikeys.generate()[0]


def _bad_checksum_key() -> str:
    key = apikeys.generate()[0]
    return key[:-1] + ("A" if key[-1] != "A" else "B")


CREDENTIALS = {
    "none": lambda: {},
    "unknown key as bearer": lambda: {"Authorization": f"Bearer {_unknown_key()}"},
    "unknown key as x-api-key": lambda: {"X-API-Key": _unknown_key()},
    "bad checksum": lambda: {"Authorization": f"Bearer {_bad_checksum_key()}"},
    "garbage": lambda: {"X-API-Key": "letmein"},
    "jwt-shaped": lambda: {"Authorization": "Bearer eyJhbGciOiJub25lIn0.e30."},
    "basic auth": lambda: {"Authorization": "Basic dXNlcjpwYXNz"},
}


def _assert_unauthenticated(response: httpx.Response) -> None:
    assert response.status_code == 401, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.headers["www-authenticate"].startswith("Bearer")
    body = response.json()
    assert body["code"] == "UNAUTHENTICATED"
    assert body["request_id"] == response.headers["x-request-id"]


@pytest.mark.parametrize("credential", list(CREDENTIALS))
@pytest.mark.parametrize(("method", "path"), OPERATIONS)
async def test_every_api_route_rejects_missing_or_wrong_credentials(
    client: httpx.AsyncClient, method: str, path: str, credential: str
) -> None:
    body = {} if method in {"POST", "PUT", "PATCH"} else None
    response = await client.request(
        method, _concrete(path), headers=CREDENTIALS[credential](), json=body
    )
    _assert_unauthenticated(response)


@pytest.mark.parametrize(("method", "path"), OPERATIONS)
async def test_every_api_route_rejects_a_revoked_key(
    client: httpx.AsyncClient,
    sessions: async_sessionmaker[AsyncSession],
    make_caller: Any,
    method: str,
    path: str,
) -> None:
    caller = await make_caller()
    async with sessions.begin() as session:
        await identity.revoke_api_key(session=session, user_id=caller.user_id, key_id=caller.key_id)
    response = await client.request(method, _concrete(path), headers=caller.headers)
    _assert_unauthenticated(response)


async def test_an_expired_key_is_rejected(client: httpx.AsyncClient, make_caller: Any) -> None:
    caller = await make_caller(expires_at=datetime.now(UTC) - timedelta(days=1))
    _assert_unauthenticated(await client.get("/api/user", headers=caller.headers))


async def test_a_key_works_as_bearer_and_as_x_api_key(
    client: httpx.AsyncClient, caller: Any
) -> None:
    for headers in ({"Authorization": f"Bearer {caller.api_key}"}, {"X-API-Key": caller.api_key}):
        response = await client.get("/api/user", headers=headers)
        assert response.status_code == 200, response.text
        assert response.json() == {
            "id": caller.user_id,
            "email": caller.email,
            "name": "Test User",
            "role": "user",
            "timezone": "UTC",
        }


async def test_a_key_made_with_another_pepper_is_rejected(
    client: httpx.AsyncClient, make_caller: Any
) -> None:
    caller = await make_caller(pepper=b"some other pepper")
    _assert_unauthenticated(await client.get("/api/user", headers=caller.headers))


async def test_open_routes_need_no_credentials(client: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/readyz", "/openapi.json", "/docs"):
        assert (await client.get(path)).status_code == 200, path


@contextlib.asynccontextmanager
async def _running(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://gateway") as client:
            yield client


async def test_a_valid_key_is_remembered_briefly_and_its_expiry_still_holds(
    settings: GatewaySettings,
    sessions: async_sessionmaker[AsyncSession],
    make_caller: Any,
) -> None:
    """API keys found valid are not looked up again for `api_key_cache_s` (issue 8): a
    revocation written by another replica (here: straight to the database) takes effect
    within that time, and a key past its expiry is refused at once all the same."""
    app = create_app(settings.model_copy(update={"api_key_cache_s": 3.0}))
    caller = await make_caller()
    async with _running(app) as client:
        expiring = await make_caller(expires_at=datetime.now(UTC) + timedelta(seconds=1))
        for someone in (caller, expiring):
            assert (await client.get("/api/user", headers=someone.headers)).status_code == 200
        remembered_until = asyncio.get_running_loop().time() + 3.0
        async with sessions.begin() as session:
            await identity.revoke_api_key(
                session=session, user_id=caller.user_id, key_id=caller.key_id
            )
        await asyncio.sleep(1.2)
        # Both still remembered: the revoked key still answers, the expired one does not.
        assert (await client.get("/api/user", headers=caller.headers)).status_code == 200
        _assert_unauthenticated(await client.get("/api/user", headers=expiring.headers))
        await asyncio.sleep(remembered_until - asyncio.get_running_loop().time() + 0.1)
        _assert_unauthenticated(await client.get("/api/user", headers=caller.headers))


async def test_changes_made_through_the_gateway_apply_at_once_despite_the_cache(
    settings: GatewaySettings, make_caller: Any
) -> None:
    """Suspending or revoking a key through this gateway forgets what it remembered."""
    app = create_app(settings.model_copy(update={"api_key_cache_s": 3600}))
    async with _running(app) as client:
        caller = await make_caller()
        other = await client.post(
            "/api/user/api-keys", json={"name": "second"}, headers=caller.headers
        )
        assert other.status_code == 201, other.text
        second = {"X-API-Key": other.json()["api_key"]}
        assert (await client.get("/api/user", headers=second)).status_code == 200
        suspended = await client.post(
            f"/api/user/api-keys/{other.json()['id']}/suspend", headers=caller.headers
        )
        assert suspended.status_code == 200, suspended.text
        _assert_unauthenticated(await client.get("/api/user", headers=second))
        revoked = await client.delete(f"/api/user/api-keys/{caller.key_id}", headers=caller.headers)
        assert revoked.status_code == 204, revoked.text
        _assert_unauthenticated(await client.get("/api/user", headers=caller.headers))


def _authenticator(sessions: async_sessionmaker[AsyncSession], pepper: bytes) -> Any:
    from agentloom_gateway.auth import ApiKeyAuthenticator

    engine = sessions.kw["bind"]
    return ApiKeyAuthenticator(
        engine, pepper=pepper, touch_interval=timedelta(minutes=1), cache_s=60.0
    )


def _counting_lookups(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The keys `identity.authenticate_api_key` was asked about, in order (the real
    function runs: the database answers)."""
    asked: list[str] = []
    real = identity.authenticate_api_key

    async def counting(**kwargs: Any) -> Any:
        asked.append(kwargs["api_key"])
        await asyncio.sleep(0.05)  # long enough for the other requests to arrive
        return await real(**kwargs)

    monkeypatch.setattr(identity, "authenticate_api_key", counting)
    return asked


async def test_requests_arriving_during_a_lookup_share_it(
    sessions: async_sessionmaker[AsyncSession],
    pepper: bytes,
    make_caller: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An unknown key asked about by many requests at once is looked up once; one caller
    cancelled does not cancel the others' answer."""
    caller, stranger = await make_caller(), await make_caller()
    asked = _counting_lookups(monkeypatch)
    authenticator = _authenticator(sessions, pepper)
    impatient = asyncio.ensure_future(authenticator.authenticate(caller.api_key))
    answers = [
        asyncio.ensure_future(authenticator.authenticate(key))
        for key in [caller.api_key] * 10 + [stranger.api_key] * 5
    ]
    await asyncio.sleep(0.01)
    impatient.cancel()
    principals = await asyncio.gather(*answers)
    assert sorted(asked) == sorted([caller.api_key, stranger.api_key])
    assert [p.user_id for p in principals] == [caller.user_id] * 10 + [stranger.user_id] * 5
    assert (await authenticator.authenticate(caller.api_key)).user_id == caller.user_id
    assert len(asked) == 2  # remembered afterwards


async def test_a_lookup_in_flight_when_keys_are_forgotten_is_not_remembered(
    sessions: async_sessionmaker[AsyncSession],
    pepper: bytes,
    make_caller: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    caller = await make_caller()
    asked = _counting_lookups(monkeypatch)
    authenticator = _authenticator(sessions, pepper)
    before = asyncio.ensure_future(authenticator.authenticate(caller.api_key))
    await asyncio.sleep(0.01)
    authenticator.forget_user(caller.user_id)
    assert (await before) is not None
    await authenticator.authenticate(caller.api_key)
    assert len(asked) == 2  # what the lookup begun before the change found was not kept
    authenticator.forget_user(caller.user_id)
    before = asyncio.ensure_future(authenticator.authenticate(caller.api_key))
    await asyncio.sleep(0.01)
    authenticator.forget_user(caller.user_id)
    after = asyncio.ensure_future(authenticator.authenticate(caller.api_key))
    await asyncio.gather(before, after)
    assert len(asked) == 4  # the request after the change did not join the earlier lookup
    await authenticator.authenticate(caller.api_key)
    assert len(asked) == 4  # the later lookup's answer is remembered
