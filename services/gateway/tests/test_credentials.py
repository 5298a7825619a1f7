"""The credentials vault over REST (secrets go in, never out) and over the internal gRPC
CredentialsService (the owner's secret, decrypted, for the runner); rotation by command."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import sys
import uuid
from typing import Any

import grpc
import httpx
import pytest
from sqlalchemy import select

from agentloom.identity.v1 import credentials_pb2, credentials_pb2_grpc
from agentloom_gateway.settings import GatewaySettings
from agentloom_gateway.tables import Credential

CANARY = "sk-canary-" + uuid.uuid4().hex
BASE = "/api/integrations/credentials"


def _body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "provider": "openai",
        "kind": "api_key",
        "title": "My <b>OpenAI</b> key",
        "secrets": {"api_key": CANARY},
    }
    body.update(overrides)
    return body


async def _grpc_get(app: Any, user_id: str, credential_id: str) -> Any:
    port = app.state.credentials_server.port
    async with grpc.aio.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = credentials_pb2_grpc.CredentialsServiceStub(channel)
        return await stub.GetCredential(
            credentials_pb2.GetCredentialRequest(user_id=user_id, credential_id=credential_id),
            timeout=5,
        )


async def test_credentials_never_come_back_over_rest_but_reach_the_runner(
    app: Any, client: httpx.AsyncClient, make_caller: Any, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    alice, bob = await make_caller(), await make_caller()
    created = await client.post(BASE, json=_body(), headers=alice.headers)
    assert created.status_code == 201, created.text
    credential = created.json()
    assert credential["title"] == "My OpenAI key"  # markup removed
    assert created.headers["location"] == f"{BASE}/{credential['id']}"
    seen = [created]
    seen.append(await client.get(BASE, headers=alice.headers))
    seen.append(await client.get(f"{BASE}/{credential['id']}", headers=alice.headers))
    seen.append(
        await client.patch(
            f"{BASE}/{credential['id']}", json={"title": "renamed"}, headers=alice.headers
        )
    )
    assert [c["id"] for c in seen[1].json()["credentials"]] == [credential["id"]]
    for response in seen:
        assert response.status_code in (200, 201)
        assert CANARY not in response.text
    # Another user: the same 404 as an unknown id, and nothing in their list.
    for path in (f"{BASE}/{credential['id']}", f"{BASE}/{uuid.uuid4()}"):
        response = await client.get(path, headers=bob.headers)
        assert response.status_code == 404 and response.json()["code"] == "NOT_FOUND"
    assert (await client.get(BASE, headers=bob.headers)).json() == {"credentials": []}
    # The runner's view: decrypted, for the owner only.
    reply = await _grpc_get(app, alice.user_id, credential["id"])
    assert dict(reply.secrets) == {"api_key": CANARY}
    assert (reply.provider, reply.kind, reply.title) == ("openai", "api_key", "renamed")
    for user_id, credential_id in ((bob.user_id, credential["id"]), (alice.user_id, "nope")):
        with pytest.raises(grpc.aio.AioRpcError) as failure:
            await _grpc_get(app, user_id, credential_id)
        assert failure.value.code() == grpc.StatusCode.NOT_FOUND
    assert CANARY not in caplog.text


async def test_a_secret_is_replaced_and_a_credential_deleted(
    app: Any, client: httpx.AsyncClient, caller: Any
) -> None:
    body = _body(
        provider="smtp",
        kind="user_password",
        title="mail",
        secrets={"password": "first"},
        attributes={"username": "me"},
    )
    credential = (await client.post(BASE, json=body, headers=caller.headers)).json()
    path = f"{BASE}/{credential['id']}"
    changed = await client.patch(
        path, json={"secrets": {"password": "second"}}, headers=caller.headers
    )
    assert changed.status_code == 200, changed.text
    reply = await _grpc_get(app, caller.user_id, credential["id"])
    assert dict(reply.secrets) == {"password": "second"}
    assert dict(reply.attributes) == {"username": "me"}
    wrong = await client.patch(path, json={"secrets": {"api_key": "x"}}, headers=caller.headers)
    assert wrong.status_code == 422
    assert "x" not in str(wrong.json().get("errors"))
    assert (await client.delete(path, headers=caller.headers)).status_code == 204
    assert (await client.get(path, headers=caller.headers)).status_code == 404


@pytest.mark.parametrize(
    "body",
    [
        _body(kind="user_password"),  # lacks password and username
        _body(secrets={"api_key": CANARY, "extra": "x"}),
        _body(provider="Not A Provider"),
        _body(kind="carrier_pigeon"),
        _body(secrets={"api_key": ""}),
        _body(title="<script>alert(1)</script>"),
    ],
)
async def test_invalid_credentials_are_422_without_echoing_secrets(
    client: httpx.AsyncClient, caller: Any, body: dict[str, Any]
) -> None:
    response = await client.post(BASE, json=body, headers=caller.headers)
    assert response.status_code == 422, response.text
    assert CANARY not in response.text


async def test_rotation_rewraps_every_data_key_while_serving(
    app: Any, client: httpx.AsyncClient, caller: Any, settings: GatewaySettings, sessions: Any
) -> None:
    credential = (await client.post(BASE, json=_body(), headers=caller.headers)).json()
    # The gateway already knows "next" (not current): rewrapping to it needs no restart.
    keks = {k: v.get_secret_value() for k, v in settings.credential_keks.items()}
    assert "next" in keks and settings.credential_kek_current != "next"
    env = {
        **os.environ,
        "AGENTLOOM_DATABASE_URL": settings.database_url,
        "AGENTLOOM_CREDENTIAL_KEKS": json.dumps(keks),
        "AGENTLOOM_CREDENTIAL_KEK_CURRENT": "next",
    }
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "agentloom_gateway",
        "rewrap-credentials",
        env=env,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await process.communicate()
    assert process.returncode == 0, err.decode()
    assert json.loads(out)["rewrapped"] >= 1
    async with sessions.begin() as session:
        kek_ids = set(await session.scalars(select(Credential.kek_id)))
    assert kek_ids == {"next"}
    # The running gateway, which still has both keys, keeps reading it.
    reply = await _grpc_get(app, caller.user_id, credential["id"])
    assert dict(reply.secrets) == {"api_key": CANARY}
    assert CANARY not in out.decode() + err.decode()


async def test_an_undecryptable_credential_is_a_loud_internal_error(
    app: Any,
    client: httpx.AsyncClient,
    caller: Any,
    sessions: Any,
    caplog: pytest.LogCaptureFixture,
) -> None:
    credential = (await client.post(BASE, json=_body(), headers=caller.headers)).json()
    async with sessions.begin() as session:
        row = await session.get(Credential, uuid.UUID(credential["id"]))
        row.ciphertext = row.ciphertext[:-1] + bytes([row.ciphertext[-1] ^ 1])
    with pytest.raises(grpc.aio.AioRpcError) as failure:
        await _grpc_get(app, caller.user_id, credential["id"])
    assert failure.value.code() == grpc.StatusCode.INTERNAL
    assert "does not decrypt" in caplog.text
