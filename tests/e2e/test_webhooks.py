"""Outgoing webhooks end to end, through the gateway and the notify process of the session's
stack, to real local receivers that verify every request with the `standardwebhooks`
package. The stack allows loopback targets and shrinks the retry schedule to milliseconds
(tests/conftest.py); some tests publish synthetic events on the bus the way the executor
does, so they do not wait for executions."""

from __future__ import annotations

import asyncio
import json
import time
import uuid
from collections import Counter, defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import aio_pika
import httpx
import pytest
from helpers import User, graph, link, node

from agentloom_common.bus import EVENTS_EXCHANGE
from agentloom_devkit import resources
from agentloom_devkit.stack import Stack
from agentloom_devkit.webhook_receiver import WebhookReceiver, always, flaky

Publish = Callable[[dict[str, Any]], Awaitable[None]]


@pytest.fixture
async def publish(stack: Stack) -> AsyncIterator[Publish]:
    """Publish an event on `agentloom.events` exactly as the executor's relay does."""
    connection = await aio_pika.connect(resources.amqp_url(stack.config.vhost))
    channel = await connection.channel(publisher_confirms=True)
    exchange = await channel.get_exchange(EVENTS_EXCHANGE)

    async def send(event: dict[str, Any]) -> None:
        message = aio_pika.Message(
            json.dumps(event).encode(),
            message_id=event["event_id"],
            content_type="application/json",
            delivery_mode=aio_pika.DeliveryMode.PERSISTENT,
        )
        await exchange.publish(message, routing_key=event["type"], mandatory=True)

    yield send
    await connection.close()


def synthetic(user_id: str, exec_id: str, seq: int, type_: str = "node.output") -> dict[str, Any]:
    return {
        "event_id": f"{exec_id}:{seq}",
        "type": type_,
        "seq": seq,
        "user_id": user_id,
        "graph_id": "g",
        "graph_version": 1,
        "graph_exec_id": exec_id,
        "created_at": "2026-11-26T01:02:03.456Z",
        "data": {"node_exec_id": "n", "node_id": "out", "pin": "result", "value": seq},
    }


async def new_user(stack: Stack) -> tuple[str, httpx.AsyncClient]:
    user_id, key = await stack.create_user(f"hooks-{uuid.uuid4().hex[:8]}@example.com", "H")
    return user_id, client_of(stack, User(user_id, key))


def client_of(stack: Stack, user: User) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=stack.gateway_url, headers={"X-API-Key": user.api_key}, timeout=30
    )


async def create_webhook(
    http: httpx.AsyncClient, receiver: WebhookReceiver, types: list[str] | None = None
) -> dict[str, Any]:
    body: dict[str, Any] = {"url": f"{receiver.url}/hook", "description": "test receiver"}
    if types is not None:
        body["event_types"] = types
    response = await http.post("/api/webhooks", json=body)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    assert response.headers["location"] == f"/api/webhooks/{created['id']}"
    receiver.secret = created["secret"]
    return created


async def until(check: Callable[[], Awaitable[bool] | bool], timeout_s: float = 20.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.05)


async def delivery_log(http: httpx.AsyncClient, webhook_id: str) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    token = ""
    while True:
        response = await http.get(
            f"/api/webhooks/{webhook_id}/deliveries",
            params={"page_size": 100, **({"page_token": token} if token else {})},
        )
        assert response.status_code == 200, response.text
        page = response.json()
        rows += page["deliveries"]
        token = page["next_page_token"] or ""
        if not token:
            return rows


async def settled(http: httpx.AsyncClient, webhook_id: str, count: int) -> list[dict[str, Any]]:
    """The delivery log once it has `count` rows and none is pending."""
    rows: list[dict[str, Any]] = []

    async def check() -> bool:
        nonlocal rows
        rows = await delivery_log(http, webhook_id)
        return len(rows) == count and all(row["status"] != "pending" for row in rows)

    await until(check)
    return rows


async def test_every_event_of_a_real_execution_is_delivered_signed(stack: Stack) -> None:
    _user_id, http = await new_user(stack)
    async with http:
        with WebhookReceiver() as receiver:
            hook = await create_webhook(http, receiver)
            spec = graph(
                "hooked",
                [node("in", "text_input_block", name="w"), node("out", "output_block", name="r")],
                [link("in", "text", "out", "value")],
            )
            created = (await http.post("/api/graphs", json=spec)).json()
            run = await http.post(
                f"/api/graphs/{created['id']}/execute", json={"inputs": {"w": "hi"}}
            )
            assert run.status_code == 201, run.text
            exec_id = run.json()["id"]

            def finished() -> bool:
                return any(
                    r.verified
                    and r.json()["type"] == "execution.status"
                    and r.json()["data"]["status"] == "COMPLETED"
                    for r in receiver.received()
                )

            await until(finished)
            # Deliveries run concurrently: the last event may arrive before others. Its seq
            # is the execution's event count (1..n), so that many deliveries are awaited.
            total = max(
                r.json()["seq"]
                for r in receiver.received()
                if r.verified and r.json()["type"] == "execution.status"
            )
            rows = await settled(http, hook["id"], total)
            await until(lambda: len(receiver.delivered()) == total)
            received = receiver.received()
            assert all(r.verified for r in received)
            assert {row["status"] for row in rows} == {"delivered"}
            events = [r.json() for r in receiver.delivered().values()]
            assert {e["graph_exec_id"] for e in events} == {exec_id}
            seqs = sorted(e["seq"] for e in events)
            assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # no gap, no duplicate
            types = Counter(e["type"] for e in events)
            assert types["node.output"] >= 1 and types["node.status"] >= 2
            assert {row["webhook_id"] for row in rows} == {r.webhook_id for r in received}
            await http.delete(f"/api/webhooks/{hook['id']}")


async def test_a_flaky_receiver_loses_nothing_and_retries_keep_their_id(
    stack: Stack, publish: Publish, alice: User
) -> None:
    user_id, http = alice.user_id, client_of(stack, alice)
    count = 30
    async with http:
        with WebhookReceiver(flaky(0.3, seed=20261126)) as receiver:
            hook = await create_webhook(http, receiver)
            exec_id = str(uuid.uuid4())
            for seq in range(1, count + 1):
                await publish(synthetic(user_id, exec_id, seq))
            await publish(synthetic(user_id, exec_id, 5))  # the bus redelivering one
            rows = await settled(http, hook["id"], count)
            received = receiver.received()
            assert all(r.verified for r in received)
            assert any(r.status == 500 for r in received)  # the receiver did fail some
            # Every event delivered, exactly once by id; every retry carried the same id.
            by_id: dict[str, list[Any]] = defaultdict(list)
            for r in received:
                by_id[r.webhook_id].append(r)
            assert len(by_id) == count
            for attempts in by_id.values():
                assert len({a.json()["event_id"] for a in attempts}) == 1
                assert [a.status for a in attempts].count(200) == 1
                assert attempts[-1].status == 200
            delivered_events = sorted(r.json()["seq"] for r in receiver.delivered().values())
            assert delivered_events == list(range(1, count + 1))
            assert {row["status"] for row in rows} == {"delivered"}
            for row in rows:
                assert len(row["attempts"]) == len(by_id[row["webhook_id"]])
                assert row["attempts"][-1]["status_code"] == 200
            await http.delete(f"/api/webhooks/{hook['id']}")


async def test_a_410_disables_the_endpoint_until_it_is_enabled(
    stack: Stack, publish: Publish, alice: User
) -> None:
    user_id, http = alice.user_id, client_of(stack, alice)
    async with http:
        with WebhookReceiver(always(410)) as receiver:
            hook = await create_webhook(http, receiver)
            exec_id = str(uuid.uuid4())
            await publish(synthetic(user_id, exec_id, 1))

            async def disabled() -> bool:
                return not (await http.get(f"/api/webhooks/{hook['id']}")).json()["enabled"]

            await until(disabled)
            current = (await http.get(f"/api/webhooks/{hook['id']}")).json()
            assert "410" in current["disabled_reason"]
            for seq in (2, 3):
                await publish(synthetic(user_id, exec_id, seq))
            await asyncio.sleep(0.5)  # absence: give notify time to (wrongly) send them
            assert len(receiver.received()) == 1
            [row] = await delivery_log(http, hook["id"])
            assert row["status"] == "failed"
            refused = await http.post(
                f"/api/webhooks/{hook['id']}/deliveries/{row['id']}/redeliver"
            )
            assert refused.status_code == 409, refused.text
            # Enabled again: new events and redeliveries flow, with the same webhook-id.
            receiver.respond = always(200)
            enabled = await http.post(f"/api/webhooks/{hook['id']}/enable")
            assert enabled.status_code == 200 and enabled.json()["enabled"] is True
            assert enabled.json()["disabled_reason"] is None
            again = await http.post(f"/api/webhooks/{hook['id']}/deliveries/{row['id']}/redeliver")
            assert again.status_code == 202, again.text
            await until(lambda: len(receiver.delivered()) == 1)
            assert list(receiver.delivered()) == [row["webhook_id"]]
            await http.delete(f"/api/webhooks/{hook['id']}")


async def test_no_user_ever_gets_or_sees_another_users_webhooks(
    stack: Stack, publish: Publish, alice: User, bob: User
) -> None:
    alice_id = alice.user_id
    async with client_of(stack, alice) as alice_http, client_of(stack, bob) as bob_http:
        with WebhookReceiver() as alices, WebhookReceiver() as bobs:
            hook = await create_webhook(alice_http, alices, ["node.output", "execution.status"])
            bobs_hook = await create_webhook(bob_http, bobs)
            exec_id = str(uuid.uuid4())
            for seq, type_ in enumerate(["node.status", "node.output", "execution.status"], 1):
                await publish(synthetic(alice_id, exec_id, seq, type_))
            rows = await settled(alice_http, hook["id"], 2)
            assert sorted(row["event_type"] for row in rows) == ["execution.status", "node.output"]
            await asyncio.sleep(0.3)  # absence
            assert bobs.received() == []
            assert len(alices.received()) == 2
            base = f"/api/webhooks/{hook['id']}"
            for method, path in [
                ("GET", base),
                ("DELETE", base),
                ("POST", f"{base}/enable"),
                ("GET", f"{base}/deliveries"),
                ("POST", f"{base}/deliveries/{rows[0]['id']}/redeliver"),
            ]:
                response = await bob_http.request(method, path)
                assert response.status_code == 404, (method, path, response.text)
            listed = (await bob_http.get("/api/webhooks")).json()["webhooks"]
            assert hook["id"] not in {w["id"] for w in listed}
            # The secret is shown once: never in a read.
            mine = await alice_http.get(base)
            assert "secret" not in mine.json() and hook["secret"] not in mine.text
            assert (await alice_http.delete(base)).status_code == 204
            assert (await alice_http.get(base)).status_code == 404
            await bob_http.delete(f"/api/webhooks/{bobs_hook['id']}")


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"url": "http://169.254.169.254/latest/meta-data/"}, "body.url"),
        ({"url": "http://[::ffff:127.0.0.1]:8080/hook"}, "body.url"),
        ({"url": "ftp://example.com/hook"}, "body.url"),
        ({"url": "https://example.com/" + "x" * 2100}, "body.url"),
        ({"url": "https://example.com/h", "event_types": ["graph.deleted"]}, "body.event_types"),
        ({"url": "https://example.com/h", "secret": "whsec_mine"}, "body.secret"),
    ],
)
async def test_bad_webhook_targets_are_422_with_the_field(
    stack: Stack, bob: User, body: dict[str, Any], field: str
) -> None:
    async with client_of(stack, bob) as http:
        before = (await http.get("/api/webhooks")).json()["webhooks"]
        response = await http.post("/api/webhooks", json=body)
        assert response.status_code == 422, response.text
        assert response.headers["content-type"] == "application/problem+json"
        fields = [error["field"] for error in response.json()["errors"]]
        assert any(name == field or name.startswith(f"{field}.") for name in fields), fields
        assert (await http.get("/api/webhooks")).json()["webhooks"] == before
