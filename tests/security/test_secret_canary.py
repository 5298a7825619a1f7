"""A canary secret stored as a credential appears in no REST response, no log line of any
service, and not in clear in the database; only the internal gRPC service hands it back,
to its owner."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import grpc
import httpx
from sqlalchemy import text

from agentloom.identity.v1 import credentials_pb2, credentials_pb2_grpc
from agentloom_common.db import create_engine

BASE = "/api/integrations/credentials"


async def test_a_canary_secret_never_leaks(
    stack: Any, http: httpx.AsyncClient, alice: Any, bob: Any
) -> None:
    canary = f"sk-canary-{uuid.uuid4().hex}"
    seen: list[httpx.Response] = []
    created = await http.post(
        BASE,
        json={
            "provider": "openai",
            "kind": "api_key",
            "title": "canary",
            "secrets": {"api_key": canary},
        },
        headers=alice.headers,
    )
    assert created.status_code == 201, created.text
    credential_id = created.json()["id"]
    path = f"{BASE}/{credential_id}"
    seen += [created, await http.get(BASE, headers=alice.headers)]
    seen.append(await http.get(path, headers=alice.headers))
    seen.append(
        await http.patch(path, json={"secrets": {"api_key": canary}}, headers=alice.headers)
    )
    seen.append(await http.get(path, headers=bob.headers))
    # Invalid bodies carrying the canary: 422 without echoing it.
    for body in (
        {"provider": "openai", "kind": "api_key", "title": "x", "secrets": {"nope": canary}},
        {"provider": "openai", "kind": "oauth2", "title": "x", "secrets": {"api_key": canary}},
        {"provider": canary.upper(), "kind": "api_key", "title": "x", "secrets": {}},
    ):
        seen.append(await http.post(BASE, json=body, headers=alice.headers))
    assert [r.status_code for r in seen[:5]] == [201, 200, 200, 200, 404]
    assert all(r.status_code == 422 for r in seen[5:]), [r.text for r in seen[5:]]
    for response in seen:
        assert canary not in response.text
        assert canary not in str(response.headers)

    # The runner's way in: the owner gets it, another user does not.
    address = stack.env()["AGENTLOOM_CREDENTIALS_GRPC_ADDR"]
    async with grpc.aio.insecure_channel(address) as channel:
        stub = credentials_pb2_grpc.CredentialsServiceStub(channel)
        reply = await stub.GetCredential(
            credentials_pb2.GetCredentialRequest(
                user_id=alice.user_id, credential_id=credential_id
            ),
            timeout=5,
        )
        assert reply.secrets["api_key"] == canary
        try:
            await stub.GetCredential(
                credentials_pb2.GetCredentialRequest(
                    user_id=bob.user_id, credential_id=credential_id
                ),
                timeout=5,
            )
            raise AssertionError("another user's credential was served")
        except grpc.aio.AioRpcError as error:
            assert error.code() == grpc.StatusCode.NOT_FOUND

    # Not in clear at rest.
    engine = create_engine(stack.database_url, pool_size=1)
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(text("SELECT * FROM identity.credentials"))).fetchall()
    finally:
        await engine.dispose()
    assert rows and canary not in repr(rows)
    assert canary.encode() not in b"".join(
        bytes(v) for row in rows for v in row if isinstance(v, bytes | memoryview)
    )

    # No service logged it (logs run at DEBUG), nor alice's API key.
    await asyncio.sleep(0.5)
    logs = sorted(stack.config.log_dir.glob("*.log"))
    assert logs
    for log in logs:
        content = log.read_text(errors="replace")
        assert canary not in content, log.name
        assert alice.credential not in content, log.name
