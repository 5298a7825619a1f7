"""A user's stored credential, chosen with `credentials_inputs` on execute, is what the
block uses against the provider; without a choice the platform's default key is used."""

from __future__ import annotations

import hashlib

from helpers import graph, node
from reference_client import AutoGPTClient

from agentloom_devkit.fake_openai import FakeOpenAI


def _sha(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


async def test_a_stored_credential_reaches_the_provider(
    client: AutoGPTClient, fake_openai: FakeOpenAI
) -> None:
    stored = await client.client.post(
        f"{client.base_url}/api/integrations/credentials",
        json={
            "provider": "openai",
            "kind": "api_key",
            "title": "my key",
            "secrets": {"api_key": "sk-user-own-key"},
        },
    )
    assert stored.status_code == 201, stored.text
    assert "sk-user-own-key" not in stored.text
    created = await client.create_graph(
        graph("byok", [node("llm", "llm_call_block", prompt="which key? {x}", x="mine")], [])
    )
    url = f"{client.base_url}/api/graphs/{created['id']}/execute"
    response = await client.client.post(
        url, json={"inputs": {}, "credentials_inputs": {"openai": {"id": stored.json()["id"]}}}
    )
    assert response.status_code == 201, response.text
    finished = await client.wait(response.json()["id"])
    assert finished["status"] == "COMPLETED", finished["error"]
    sent = [r for r in fake_openai.requests() if "which key? mine" in str(r["body"])]
    assert sent[-1]["api_key_sha256"] == _sha("sk-user-own-key")

    default = await client.execute_graph(created["id"], {})
    assert (await client.wait(default["id"]))["status"] == "COMPLETED"
    sent = [r for r in fake_openai.requests() if "which key? mine" in str(r["body"])]
    assert sent[-1]["api_key_sha256"] == _sha("sk-test-platform-key")


async def test_an_unknown_credential_fails_the_node_clearly(client: AutoGPTClient) -> None:
    created = await client.create_graph(
        graph("bad key", [node("llm", "llm_call_block", prompt="hi")], [])
    )
    response = await client.client.post(
        f"{client.base_url}/api/graphs/{created['id']}/execute",
        json={
            "inputs": {},
            "credentials_inputs": {"openai": {"id": "00000000-0000-0000-0000-000000000000"}},
        },
    )
    assert response.status_code == 201, response.text
    finished = await client.wait(response.json()["id"])
    assert finished["status"] == "FAILED"
    assert "credential" in finished["error"] and "not found" in finished["error"]
