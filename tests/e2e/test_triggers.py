"""Incoming triggers through the gateway: a call signed per Standard Webhooks (signed here
with the `standardwebhooks` package) starts exactly one execution with the body as the graph
input; replaying the delivery starts none and answers the same id; bad signatures, stale
timestamps, unknown and disabled triggers are refused and start nothing; the secret is shown
once and stored sealed."""

from __future__ import annotations

import asyncio
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import httpx
import pytest
from helpers import User, graph, link, node
from standardwebhooks import Webhook

from agentloom_devkit.stack import Stack


def _graph() -> dict[str, Any]:
    return graph(
        "triggered",
        [
            node("p", "object_input_block", name="payload"),
            node("l", "text_input_block", name="label"),
            node("got", "output_block", name="received"),
            node("said", "output_block", name="label"),
        ],
        [link("p", "data", "got", "value"), link("l", "text", "said", "value")],
    )


def _signed(
    secret: str, body: bytes, delivery_id: str, at: datetime | None = None
) -> dict[str, str]:
    at = at or datetime.now(UTC)
    signature = Webhook(secret).sign(delivery_id, at, body.decode())
    return {
        "webhook-id": delivery_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature,
        "content-type": "application/json",
    }


async def _ok(response: httpx.Response, status: int = 200) -> Any:
    assert response.status_code == status, response.text
    return response.json() if response.content else None


@pytest.fixture
async def http(stack: Stack, alice: User) -> Any:
    headers = {"Authorization": f"Bearer {alice.api_key}"}
    async with httpx.AsyncClient(base_url=stack.gateway_url, headers=headers, timeout=30) as c:
        yield c


@pytest.fixture
async def anonymous(stack: Stack) -> Any:
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=30) as client:
        yield client


async def _setup(http: httpx.AsyncClient, **trigger: Any) -> tuple[str, dict[str, Any]]:
    graph_id = (await _ok(await http.post("/api/graphs", json=_graph()), 201))["id"]
    preset = await _ok(
        await http.post(
            "/api/presets",
            json={"graph_id": graph_id, "name": "label", "inputs": {"label": "from preset"}},
        ),
        201,
    )
    created = await http.post(
        f"/api/graphs/{graph_id}/triggers", json={"preset_id": preset["id"], **trigger}
    )
    body = await _ok(created, 201)
    assert created.headers["Location"] == f"/api/graphs/{graph_id}/triggers/{body['id']}"
    return graph_id, body


async def _executions(http: httpx.AsyncClient, graph_id: str) -> list[str]:
    page = await _ok(await http.get("/api/executions", params={"graph_id": graph_id}))
    return [execution["id"] for execution in page["executions"]]


async def _wait(http: httpx.AsyncClient, execution_id: str) -> dict[str, Any]:
    deadline = datetime.now(UTC) + timedelta(seconds=60)
    while datetime.now(UTC) < deadline:
        execution: dict[str, Any] = await _ok(await http.get(f"/api/executions/{execution_id}"))
        if execution["status"] in ("COMPLETED", "FAILED", "CANCELLED"):
            return execution
        await asyncio.sleep(0.1)  # polling, with the deadline above
    raise AssertionError(f"execution {execution_id} did not finish")


async def test_a_signed_call_starts_one_execution_and_a_replay_starts_none(
    http: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    graph_id, trigger = await _setup(http)
    assert trigger["secret"].startswith("whsec_")
    assert trigger["url"] == f"/hooks/triggers/{trigger['id']}"
    payload = {"order": 42, "items": ["a", "b"], "note": "ünïcode"}
    body = json.dumps(payload).encode()
    headers = _signed(trigger["secret"], body, "msg_first")

    accepted = await anonymous.post(trigger["url"], content=body, headers=headers)
    answer = await _ok(accepted, 202)
    assert answer["delivery_id"] == "msg_first"
    assert accepted.headers["Location"] == f"/api/executions/{answer['execution_id']}"
    finished = await _wait(http, answer["execution_id"])
    assert finished["status"] == "COMPLETED", finished["error"]
    assert finished["inputs"] == {"label": "from preset", "payload": payload}
    assert finished["outputs"] == {"received": [payload], "label": ["from preset"]}

    # The sender retries the same delivery (same id, even re-signed later): nothing new.
    again = await anonymous.post(
        trigger["url"], content=body, headers=_signed(trigger["secret"], body, "msg_first")
    )
    assert (await _ok(again, 202))["execution_id"] == answer["execution_id"]
    assert await _executions(http, graph_id) == [answer["execution_id"]]

    # A new delivery is a new execution.
    other = await anonymous.post(
        trigger["url"], content=body, headers=_signed(trigger["secret"], body, "msg_second")
    )
    second = (await _ok(other, 202))["execution_id"]
    assert second != answer["execution_id"]
    assert sorted(await _executions(http, graph_id)) == sorted([answer["execution_id"], second])


async def test_bad_signatures_are_401_and_change_nothing(
    http: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    graph_id, trigger = await _setup(http)
    body = b'{"x": 1}'
    good = _signed(trigger["secret"], body, "msg_1")
    forged = _signed("whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo0NTY3OA==", body, "msg_1")
    stale = _signed(trigger["secret"], body, "msg_1", datetime.now(UTC) - timedelta(minutes=10))
    cases = {
        "forged": (body, forged),
        "stale": (body, stale),
        "tampered body": (b'{"x": 2}', good),
        "missing headers": (body, {"content-type": "application/json"}),
        "garbage signature": (body, {**good, "webhook-signature": "v1"}),
        "non-numeric timestamp": (body, {**good, "webhook-timestamp": "nan"}),
    }
    for name, (content, headers) in cases.items():
        refused = await anonymous.post(trigger["url"], content=content, headers=headers)
        assert refused.status_code == 401, (name, refused.text)
        assert refused.headers["content-type"] == "application/problem+json"
        assert refused.json()["code"] == "INVALID_SIGNATURE"
    unknown = await anonymous.post(f"/hooks/triggers/{uuid.uuid4()}", content=body, headers=good)
    assert unknown.status_code == 404
    nul = b'{"x": "\\u0000"}'
    unstorable = await anonymous.post(
        trigger["url"], content=nul, headers=_signed(trigger["secret"], nul, "msg_nul")
    )
    assert unstorable.status_code == 422, unstorable.text
    assert await _executions(http, graph_id) == []
    # The stale call's id was never stored: a fresh, valid call with it is accepted.
    fresh = await anonymous.post(trigger["url"], content=body, headers=good)
    assert (await _ok(fresh, 202))["delivery_id"] == "msg_1"


async def test_a_disabled_trigger_starts_nothing(
    http: httpx.AsyncClient, anonymous: httpx.AsyncClient
) -> None:
    graph_id, trigger = await _setup(http, enabled=False)
    assert trigger["enabled"] is False
    body = b'{"x": 1}'
    call = await anonymous.post(
        trigger["url"], content=body, headers=_signed(trigger["secret"], body, "msg_off")
    )
    assert call.status_code == 404, call.text
    assert await _executions(http, graph_id) == []

    base = f"/api/graphs/{graph_id}/triggers/{trigger['id']}"
    assert (await _ok(await http.post(f"{base}/enable")))["enabled"] is True
    started = await anonymous.post(
        trigger["url"], content=body, headers=_signed(trigger["secret"], body, "msg_on")
    )
    await _ok(started, 202)
    assert (await _ok(await http.post(f"{base}/disable")))["enabled"] is False
    refused = await anonymous.post(
        trigger["url"], content=body, headers=_signed(trigger["secret"], body, "msg_off_again")
    )
    assert refused.status_code == 404
    assert len(await _executions(http, graph_id)) == 1


async def test_managing_triggers_never_shows_the_secret_and_is_per_user(
    stack: Stack, http: httpx.AsyncClient, anonymous: httpx.AsyncClient, bob: User
) -> None:
    graph_id, trigger = await _setup(http)
    secret = trigger["secret"]
    base = f"/api/graphs/{graph_id}/triggers"
    got = await _ok(await http.get(f"{base}/{trigger['id']}"))
    listed = await http.get(base)
    assert got["id"] == trigger["id"] and "secret" not in got
    assert secret not in listed.text and trigger["id"] in listed.text

    connection = await asyncpg.connect(stack.database_url.replace("+asyncpg", ""))
    try:
        row = await connection.fetchrow(
            "SELECT * FROM identity.triggers WHERE id = $1", uuid.UUID(trigger["id"])
        )
    finally:
        await connection.close()
    assert row is not None
    assert secret.encode() not in b"".join(
        value if isinstance(value, bytes) else str(value).encode() for value in row.values()
    )

    bobs = {"Authorization": f"Bearer {bob.api_key}"}
    for method, path in (
        ("GET", f"{base}/{trigger['id']}"),
        ("GET", base),
        ("DELETE", f"{base}/{trigger['id']}"),
        ("POST", f"{base}/{trigger['id']}/disable"),
        ("POST", base),
    ):
        answer = await anonymous.request(method, path, headers=bobs, json={})
        assert answer.status_code == 404, (method, path, answer.text)

    bad_input = await http.post(base, json={"input_name": "nope"})
    assert bad_input.status_code == 422
    assert [e["field"] for e in bad_input.json()["errors"]] == ["body.input_name"]

    await _ok(await http.delete(f"{base}/{trigger['id']}"), 204)
    body = b"{}"
    gone = await anonymous.post(
        trigger["url"], content=body, headers=_signed(secret, body, "msg_gone")
    )
    assert gone.status_code == 404
