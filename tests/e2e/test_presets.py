"""Presets through the gateway: CRUD under the user, validation against the graph's inputs,
and execute with `preset_id`, the preset merged under the call's own inputs and credential
choices; another user's preset or another graph's is refused, naming `preset_id`."""

from __future__ import annotations

import hashlib
from typing import Any

import httpx
from helpers import User, graph, link, node
from reference_client import AutoGPTClient

from agentloom_devkit.fake_openai import FakeOpenAI
from agentloom_devkit.stack import Stack


def _greeter() -> dict[str, Any]:
    return graph(
        "greeter",
        [
            node("g", "text_input_block", name="greeting"),
            node("w", "text_input_block", name="who"),
            node("t", "text_template_block", template="{{ g }}, {{ w }}!"),
            node("out", "output_block", name="line"),
        ],
        [
            link("g", "text", "t", "g"),
            link("w", "text", "t", "w"),
            link("t", "text", "out", "value"),
        ],
    )


async def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


def _http(stack: Stack, user: User) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {user.api_key}"}
    return httpx.AsyncClient(base_url=stack.gateway_url, headers=headers, timeout=30)


async def test_preset_crud_and_validation(stack: Stack, alice: User) -> None:
    async with _http(stack, alice) as http:
        graph_id = (await _ok(await http.post("/api/graphs", json=_greeter()), 201))["id"]
        created = await http.post(
            "/api/presets",
            json={
                "graph_id": graph_id,
                "name": "<b>Formal</b>",
                "inputs": {"greeting": "Good morning"},
            },
        )
        preset = await _ok(created, 201)
        assert created.headers["Location"] == f"/api/presets/{preset['id']}"
        assert (preset["name"], preset["graph_version"]) == ("Formal", 1)  # markup removed
        assert await _ok(await http.get(f"/api/presets/{preset['id']}")) == preset

        listed = await _ok(await http.get("/api/presets", params={"graph_id": graph_id}))
        assert [p["id"] for p in listed["presets"]] == [preset["id"]]

        replaced = await _ok(
            await http.put(
                f"/api/presets/{preset['id']}",
                json={"name": "Casual", "inputs": {"greeting": "Hi", "who": "you"}},
            )
        )
        assert (replaced["name"], replaced["inputs"]) == (
            "Casual",
            {"greeting": "Hi", "who": "you"},
        )

        unknown = await http.post(
            "/api/presets", json={"graph_id": graph_id, "name": "x", "inputs": {"nope": 1}}
        )
        assert unknown.status_code == 400, unknown.text
        assert unknown.headers["content-type"] == "application/problem+json"
        assert [e["field"] for e in unknown.json()["errors"]] == ["inputs.nope"]

        await _ok(await http.delete(f"/api/presets/{preset['id']}"), 204)
        assert (await http.get(f"/api/presets/{preset['id']}")).status_code == 404


async def test_execute_merges_the_preset_under_the_call(client: AutoGPTClient) -> None:
    graph_id = (await client.create_graph(_greeter()))["id"]
    preset = await _ok(
        await client.client.post(
            f"{client.base_url}/api/presets",
            json={
                "graph_id": graph_id,
                "name": "defaults",
                "inputs": {"greeting": "Hello", "who": "Ada"},
            },
        ),
        201,
    )
    started = await client.client.post(
        f"{client.base_url}/api/graphs/{graph_id}/execute",
        params={"preset_id": preset["id"]},
        json={"inputs": {"who": "Grace"}},
    )
    execution = await _ok(started, 201)
    assert execution["inputs"] == {"greeting": "Hello", "who": "Grace"}  # the call wins
    finished = await client.wait(execution["id"])
    assert finished["status"] == "COMPLETED", finished["error"]
    assert finished["outputs"] == {"line": ["Hello, Grace!"]}

    only_preset = await client.client.post(
        f"{client.base_url}/api/graphs/{graph_id}/execute/1", params={"preset_id": preset["id"]}
    )
    finished = await client.wait((await _ok(only_preset, 201))["id"])
    assert finished["outputs"] == {"line": ["Hello, Ada!"]}


async def test_preset_credentials_reach_the_provider(
    client: AutoGPTClient, fake_openai: FakeOpenAI
) -> None:
    stored = await _ok(
        await client.client.post(
            f"{client.base_url}/api/integrations/credentials",
            json={
                "provider": "openai",
                "kind": "api_key",
                "title": "preset key",
                "secrets": {"api_key": "sk-preset-key"},
            },
        ),
        201,
    )
    graph_id = (
        await client.create_graph(
            graph(
                "preset llm", [node("llm", "llm_call_block", prompt="preset key? {x}", x="y")], []
            )
        )
    )["id"]
    preset = await _ok(
        await client.client.post(
            f"{client.base_url}/api/presets",
            json={
                "graph_id": graph_id,
                "name": "with my key",
                "credentials_inputs": {"openai": {"id": stored["id"]}},
            },
        ),
        201,
    )
    started = await client.client.post(
        f"{client.base_url}/api/graphs/{graph_id}/execute", params={"preset_id": preset["id"]}
    )
    finished = await client.wait((await _ok(started, 201))["id"])
    assert finished["status"] == "COMPLETED", finished["error"]
    sent = [r for r in fake_openai.requests() if "preset key? y" in str(r["body"])]
    assert sent[-1]["api_key_sha256"] == hashlib.sha256(b"sk-preset-key").hexdigest()


async def test_another_users_or_graphs_preset_is_refused(
    stack: Stack, alice: User, bob: User
) -> None:
    async with _http(stack, alice) as mine, _http(stack, bob) as theirs:
        graph_id = (await _ok(await mine.post("/api/graphs", json=_greeter()), 201))["id"]
        other_graph = (await _ok(await mine.post("/api/graphs", json=_greeter()), 201))["id"]
        bob_graph = (await _ok(await theirs.post("/api/graphs", json=_greeter()), 201))["id"]
        bobs = await _ok(
            await theirs.post(
                "/api/presets",
                json={"graph_id": bob_graph, "name": "bob's", "inputs": {"who": "Bob"}},
            ),
            201,
        )
        assert (await mine.get(f"/api/presets/{bobs['id']}")).status_code == 404
        assert bobs["id"] not in (await mine.get("/api/presets")).text
        # Bob cannot save a preset for alice's graph either.
        foreign = await theirs.post("/api/presets", json={"graph_id": graph_id, "name": "x"})
        assert foreign.status_code == 404, foreign.text

        before = await _ok(await mine.get("/api/executions", params={"graph_id": graph_id}))
        inputs = {"inputs": {"greeting": "a", "who": "b"}}
        refused = await mine.post(
            f"/api/graphs/{graph_id}/execute", params={"preset_id": bobs["id"]}, json=inputs
        )
        assert refused.status_code == 404, refused.text
        assert [e["field"] for e in refused.json()["errors"]] == ["query.preset_id"]

        alices = await _ok(
            await mine.post("/api/presets", json={"graph_id": other_graph, "name": "other"}), 201
        )
        mismatch = await mine.post(
            f"/api/graphs/{graph_id}/execute", params={"preset_id": alices["id"]}, json=inputs
        )
        assert mismatch.status_code == 422, mismatch.text
        assert mismatch.json()["code"] == "PRESET_GRAPH_MISMATCH"
        assert [e["field"] for e in mismatch.json()["errors"]] == ["query.preset_id"]
        after = await _ok(await mine.get("/api/executions", params={"graph_id": graph_id}))
        assert after["executions"] == before["executions"]  # nothing started
