"""Deliveries end to end inside one process: real PostgreSQL (the migrated `notify` schema),
real RabbitMQ for the intake, real HTTP receivers that verify every signature with the
`standardwebhooks` package, and the delivery worker with a retry schedule shrunk to
milliseconds."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import aio_pika
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentloom.notify.v1 import webhooks_pb2 as pb
from agentloom_common import bus, event_batches
from agentloom_common.db import create_engine, create_session_factory
from agentloom_common.errors import FailedPrecondition, InvalidArgument, NotFound
from agentloom_common.migrations import upgrade
from agentloom_common.netpolicy import AddressPolicy
from agentloom_devkit.webhook_receiver import Respond, WebhookReceiver, always
from agentloom_notify.webhooks import repository
from agentloom_notify.webhooks.delivery import DeliveryOptions, DeliveryWorker
from agentloom_notify.webhooks.intake import EventIntake, parse_event
from agentloom_notify.webhooks.sealing import SecretBox
from agentloom_notify.webhooks.servicer import WebhookServicer
from agentloom_notify.webhooks.tables import SCHEMA, Delivery, metadata
from agentloom_notify.webhooks.targets import guarded_client

BOX = SecretBox({"k1": b"k" * 32}, "k1")
FAST = DeliveryOptions(
    timeout_s=2.0,
    retry_schedule_s=(0.02, 0.02, 0.02, 0.02, 0.02),
    retry_scale=1.0,
    retry_jitter=0.2,
    disable_after_s=3600.0,
    concurrency=8,
    poll_interval_s=0.05,
    lease_margin_s=0.5,
)


@pytest.fixture(scope="module")
async def sessions(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    await asyncio.to_thread(upgrade, database_url, "agentloom_notify", SCHEMA)
    engine = create_engine(database_url, pool_size=4)
    yield create_session_factory(engine)
    await engine.dispose()


@pytest.fixture(scope="module")
def servicer(sessions: async_sessionmaker[AsyncSession]) -> WebhookServicer:
    return WebhookServicer(
        sessions,
        BOX,
        AddressPolicy(allow_private=True),
        max_endpoints_per_user=3,
        max_url_length=2048,
    )


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


Worker = Callable[..., Awaitable[DeliveryWorker]]


@pytest.fixture
async def start_worker(
    sessions: async_sessionmaker[AsyncSession],
) -> AsyncIterator[Worker]:
    """Start delivery workers (stopped after the test); options override FAST."""
    running: list[tuple[DeliveryWorker, asyncio.Task[None], Any]] = []

    async def start(allow_private: bool = True, **options: Any) -> DeliveryWorker:
        client = guarded_client(AddressPolicy(allow_private=allow_private), timeout_s=2.0)
        worker = DeliveryWorker(sessions, BOX, client, dataclasses.replace(FAST, **options))
        running.append((worker, asyncio.create_task(worker.run()), client))
        return worker

    yield start
    for worker, task, client in running:
        await worker.stop(1.0)
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await client.aclose()


def user() -> str:
    return f"user-{uuid.uuid4()}"


async def create(
    servicer: WebhookServicer,
    user_id: str,
    receiver: WebhookReceiver,
    *,
    types: tuple[str, ...] = (),
    respond: Respond | None = None,
) -> pb.WebhookEndpoint:
    reply = await servicer.CreateEndpoint(
        pb.CreateEndpointRequest(
            user_id=user_id, url=f"{receiver.url}/hook", event_types=list(types)
        ),
        None,  # type: ignore[arg-type]
    )
    receiver.secret = reply.secret
    if respond is not None:
        receiver.respond = respond
    return reply.endpoint


def event(user_id: str, seq: int, type_: str = "node.output", exec_id: str = "x") -> bytes:
    return json.dumps(
        {
            "event_id": f"{exec_id}:{seq}",
            "type": type_,
            "seq": seq,
            "user_id": user_id,
            "graph_id": "g",
            "graph_version": 1,
            "graph_exec_id": exec_id,
            "created_at": "2026-11-26T01:02:03.456Z",
            "data": {"pin": "out", "value": seq},
        }
    ).encode()


async def record(sessions: async_sessionmaker[AsyncSession], body: bytes) -> int:
    async with sessions.begin() as session:
        return await repository.record_event(session, parse_event(body), now=datetime.now(UTC))


async def until(check: Callable[[], Awaitable[bool] | bool], timeout_s: float = 10.0) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        result = check()
        if not isinstance(result, bool):
            result = await result
        if result:
            return
        if time.monotonic() > deadline:
            raise AssertionError("condition not reached in time")
        await asyncio.sleep(0.02)


async def deliveries(
    servicer: WebhookServicer, user_id: str, endpoint_id: str
) -> list[pb.WebhookDelivery]:
    reply = await servicer.ListDeliveries(
        pb.ListDeliveriesRequest(user_id=user_id, endpoint_id=endpoint_id, page_size=100),
        None,  # type: ignore[arg-type]
    )
    return list(reply.deliveries)


async def settled(servicer: WebhookServicer, user_id: str, endpoint_id: str, count: int) -> None:
    """Wait until the endpoint has `count` deliveries and none is pending any more."""

    async def check() -> bool:
        rows = await deliveries(servicer, user_id, endpoint_id)
        return len(rows) == count and all(d.status != pb.DELIVERY_STATUS_PENDING for d in rows)

    await until(check)


async def endpoint_of(servicer: WebhookServicer, user_id: str, endpoint_id: str) -> Any:
    reply = await servicer.GetEndpoint(
        pb.GetEndpointRequest(user_id=user_id, endpoint_id=endpoint_id),
        None,  # type: ignore[arg-type]
    )
    return reply.endpoint


async def test_bus_events_are_delivered_signed_once_each(
    sessions: async_sessionmaker[AsyncSession],
    servicer: WebhookServicer,
    receiver: WebhookReceiver,
    start_worker: Worker,
    amqp_url: str,
) -> None:
    alice = user()
    endpoint = await create(servicer, alice, receiver)
    worker = await start_worker()
    async with intake_exchange(amqp_url, sessions, worker) as exchange:
        for seq in (1, 2, 3, 2, 1):  # the last two: the bus redelivering
            message = aio_pika.Message(event(alice, seq), message_id=f"x:{seq}")
            await exchange.publish(message, routing_key="node.output")
        await settled(servicer, alice, endpoint.id, 3)
    rows = await deliveries(servicer, alice, endpoint.id)
    assert sorted(d.event_id for d in rows) == ["x:1", "x:2", "x:3"]
    assert all(d.status == pb.DELIVERY_STATUS_DELIVERED for d in rows)
    assert {r.webhook_id for r in receiver.received()} == {d.webhook_id for d in rows}
    assert all(r.verified for r in receiver.received())
    assert len(receiver.received()) == 3
    assert sorted(r.json()["seq"] for r in receiver.received()) == [1, 2, 3]


async def test_a_batch_of_events_is_recorded_for_each_owner_once(
    sessions: async_sessionmaker[AsyncSession],
    servicer: WebhookServicer,
    receiver: WebhookReceiver,
    start_worker: Worker,
    amqp_url: str,
) -> None:
    """The executor publishes events in batches: each event of a batch reaches its own
    user's matching endpoints, and a redelivered batch adds nothing."""
    alice, bob = user(), user()
    alices = await create(servicer, alice, receiver, types=("node.output",))
    with WebhookReceiver() as bobs_receiver:
        bobs = await create(servicer, bob, bobs_receiver)
        worker = await start_worker()
        async with intake_exchange(amqp_url, sessions, worker) as exchange:
            batch = [
                event(alice, 1),
                event(bob, 2),
                event(alice, 3, "execution.status"),
                event(alice, 4),
            ]
            for _ in range(2):  # the second: the bus redelivering the batch
                body = event_batches.encode(batch)
                await exchange.publish(aio_pika.Message(body, message_id="b"), "node.output")
            await settled(servicer, alice, alices.id, 2)
            await settled(servicer, bob, bobs.id, 1)
        assert sorted(r.json()["seq"] for r in receiver.received()) == [1, 4]
        assert [r.json()["seq"] for r in bobs_receiver.received()] == [2]
        assert all(r.verified for r in receiver.received())


async def test_a_batch_naming_its_owner_reaches_that_owners_endpoints_wanting_its_types(
    sessions: async_sessionmaker[AsyncSession],
    servicer: WebhookServicer,
    receiver: WebhookReceiver,
    start_worker: Worker,
    amqp_url: str,
) -> None:
    """Batches as the executor's relay sends them, one user each, the user in the `user_id`
    header and the batch's types in `event_types`: the intake looks the owner's endpoints
    up before reading the batch; a batch of types no endpoint wants and a user without
    endpoints record nothing; of a batch of several types, the wanted events are recorded."""
    alice, carol = user(), user()
    alices = await create(servicer, alice, receiver, types=("node.output",))
    worker = await start_worker()
    async with intake_exchange(amqp_url, sessions, worker) as exchange:
        sent = [
            (carol, [(1, "node.output")]),
            (alice, [(2, "execution.status"), (12, "execution.status")]),
            (alice, [(3, "node.output"), (13, "node.output")]),
            (alice, [(4, "execution.status"), (14, "node.output"), (24, "node.status")]),
        ]
        for owner, events in sent:
            kinds = [type_ for _, type_ in events]
            message = aio_pika.Message(
                event_batches.encode([event(owner, seq, type_) for seq, type_ in events]),
                message_id=f"h{events[0][0]}",
                headers={
                    event_batches.OWNER: owner,
                    event_batches.TYPES: event_batches.types_header(kinds),
                },
            )
            await exchange.publish(message, event_batches.routing_key(kinds))
        await settled(servicer, alice, alices.id, 3)
    assert sorted(r.json()["seq"] for r in receiver.received()) == [3, 13, 14]
    async with sessions() as session:
        assert not await repository.wants_events(session, carol, ["node.output"])
        assert await repository.wants_events(session, alice, ["node.output"])
        assert not await repository.wants_events(session, alice, ["execution.status"])
        assert await repository.wants_events(session, alice, ["execution.status", "node.output"])


async def consume_with(channel: Any, intake: EventIntake) -> None:
    await bus.consume(channel, bus.WEBHOOKS_EVENTS_QUEUE, intake.handle)


@contextlib.asynccontextmanager
async def intake_exchange(
    amqp_url: str, sessions: async_sessionmaker[AsyncSession], worker: Any
) -> AsyncIterator[Any]:
    """The events exchange on a fresh connection, with the webhook intake consuming."""
    connection = await bus.connect(amqp_url)
    try:
        channel = await connection.channel()
        await bus.Topology().declare(channel)
        await consume_with(await connection.channel(), EventIntake(sessions, worker.wake))
        yield await channel.get_exchange(bus.EVENTS_EXCHANGE)
    finally:
        await connection.close()


async def test_retries_reuse_the_webhook_id_and_log_every_attempt(
    sessions: async_sessionmaker[AsyncSession],
    servicer: WebhookServicer,
    receiver: WebhookReceiver,
    start_worker: Worker,
) -> None:
    alice = user()
    endpoint = await create(
        servicer, alice, receiver, respond=lambda _id, seen: 500 if seen < 2 else 204
    )
    assert await record(sessions, event(alice, 1)) == 1
    assert await record(sessions, event(alice, 1)) == 0  # the same event again adds nothing
    await start_worker()
    await settled(servicer, alice, endpoint.id, 1)
    received = receiver.received()
    assert [r.status for r in received] == [500, 500, 204]
    assert len({r.webhook_id for r in received}) == 1
    assert all(r.verified for r in received)
    [delivery] = await deliveries(servicer, alice, endpoint.id)
    assert delivery.webhook_id == received[0].webhook_id
    assert delivery.status == pb.DELIVERY_STATUS_DELIVERED
    assert [a.status_code for a in delivery.attempts] == [500, 500, 204]
    assert [a.error for a in delivery.attempts] == ["HTTP 500", "HTTP 500", ""]


async def test_an_exhausted_delivery_fails_and_redelivery_reuses_its_id(
    sessions: async_sessionmaker[AsyncSession],
    servicer: WebhookServicer,
    receiver: WebhookReceiver,
    start_worker: Worker,
) -> None:
    alice = user()
    endpoint = await create(servicer, alice, receiver, respond=always(503))
    await record(sessions, event(alice, 1))
    worker = await start_worker(retry_schedule_s=(0.01, 0.01))

    async def failed() -> bool:
        [d] = await deliveries(servicer, alice, endpoint.id)
        return d.status == pb.DELIVERY_STATUS_FAILED

    await until(failed)
    assert len(receiver.received()) == 3
    [delivery] = await deliveries(servicer, alice, endpoint.id)
    receiver.respond = always(200)
    reply = await servicer.Redeliver(
        pb.RedeliverRequest(user_id=alice, endpoint_id=endpoint.id, delivery_id=delivery.id),
        None,  # type: ignore[arg-type]
    )
    assert reply.delivery.status == pb.DELIVERY_STATUS_PENDING
    worker.wake()
    await settled(servicer, alice, endpoint.id, 1)
    assert {r.webhook_id for r in receiver.received()} == {delivery.webhook_id}
    [delivery] = await deliveries(servicer, alice, endpoint.id)
    assert delivery.status == pb.DELIVERY_STATUS_DELIVERED
    assert [a.manual for a in delivery.attempts] == [False, False, False, True]
    # Another user's redelivery of it is a 404, like a missing one.
    with pytest.raises(NotFound):
        await servicer.Redeliver(
            pb.RedeliverRequest(user_id=user(), endpoint_id=endpoint.id, delivery_id=delivery.id),
            None,  # type: ignore[arg-type]
        )


async def test_a_410_disables_the_endpoint_and_nothing_more_is_sent(
    sessions: async_sessionmaker[AsyncSession],
    servicer: WebhookServicer,
    receiver: WebhookReceiver,
    start_worker: Worker,
) -> None:
    alice = user()
    endpoint = await create(servicer, alice, receiver, respond=always(410))
    await record(sessions, event(alice, 1))
    await start_worker()

    async def disabled() -> bool:
        return not (await endpoint_of(servicer, alice, endpoint.id)).enabled

    await until(disabled)
    current = await endpoint_of(servicer, alice, endpoint.id)
    assert "410" in current.disabled_reason
    assert await record(sessions, event(alice, 2)) == 0  # no deliveries for a disabled one
    await asyncio.sleep(0.3)  # absence: give the worker time to (wrongly) send anything
    assert len(receiver.received()) == 1
    with pytest.raises(FailedPrecondition):
        [delivery] = await deliveries(servicer, alice, endpoint.id)
        await servicer.Redeliver(
            pb.RedeliverRequest(user_id=alice, endpoint_id=endpoint.id, delivery_id=delivery.id),
            None,  # type: ignore[arg-type]
        )
    # Enabled again, it receives new events.
    receiver.respond = always(200)
    await servicer.EnableEndpoint(
        pb.EnableEndpointRequest(user_id=alice, endpoint_id=endpoint.id),
        None,  # type: ignore[arg-type]
    )
    assert await record(sessions, event(alice, 3)) == 1
    await until(lambda: len(receiver.delivered()) == 1)


async def test_an_endpoint_failing_past_the_window_is_disabled(
    sessions: async_sessionmaker[AsyncSession],
    servicer: WebhookServicer,
    receiver: WebhookReceiver,
    start_worker: Worker,
) -> None:
    alice = user()
    endpoint = await create(servicer, alice, receiver, respond=always(500))
    for seq in range(3):
        await record(sessions, event(alice, seq))
    await start_worker(retry_schedule_s=(0.05,) * 50, disable_after_s=0.4)

    async def disabled() -> bool:
        return not (await endpoint_of(servicer, alice, endpoint.id)).enabled

    await until(disabled)
    sent = len(receiver.received())
    assert "failed since" in (await endpoint_of(servicer, alice, endpoint.id)).disabled_reason
    await asyncio.sleep(0.3)  # absence: retries were due every 50 ms
    assert len(receiver.received()) == sent
    rows = await deliveries(servicer, alice, endpoint.id)
    assert {d.status for d in rows} == {pb.DELIVERY_STATUS_FAILED}


async def test_a_target_blocked_at_connect_time_is_never_contacted(
    sessions: async_sessionmaker[AsyncSession],
    servicer: WebhookServicer,
    receiver: WebhookReceiver,
    start_worker: Worker,
) -> None:
    """Registered while private targets were allowed; a worker that refuses them must not
    connect (the guard runs at every connection, not only at creation)."""
    alice = user()
    endpoint = await create(servicer, alice, receiver)
    await record(sessions, event(alice, 1))
    await start_worker(allow_private=False)

    async def attempted() -> bool:
        [d] = await deliveries(servicer, alice, endpoint.id)
        return len(d.attempts) >= 1

    await until(attempted)
    [delivery] = await deliveries(servicer, alice, endpoint.id)
    assert "loopback" in delivery.attempts[0].error
    assert delivery.attempts[0].status_code == 0
    assert receiver.received() == []


async def test_a_worker_that_dies_mid_delivery_is_taken_over_with_the_same_id(
    sessions: async_sessionmaker[AsyncSession],
    servicer: WebhookServicer,
    receiver: WebhookReceiver,
    start_worker: Worker,
) -> None:
    alice = user()
    endpoint = await create(servicer, alice, receiver)
    await record(sessions, event(alice, 1))
    async with sessions.begin() as session:  # a worker claims it, then dies
        claims = await repository.claim_due(
            session, limit=100, now=datetime.now(UTC), lease=timedelta(seconds=0.5)
        )
    # (Due work of earlier tests may be claimed too: it comes back after the same lease.)
    [claim] = [c for c in claims if c.endpoint_id == uuid.UUID(endpoint.id)]
    await start_worker()
    await settled(servicer, alice, endpoint.id, 1)
    assert receiver.received()[0].webhook_id == claim.webhook_id
    [delivery] = await deliveries(servicer, alice, endpoint.id)
    assert delivery.attempt_count == 2
    assert len(delivery.attempts) == 1  # the dead worker recorded nothing


async def test_two_workers_deliver_each_event_exactly_once(
    sessions: async_sessionmaker[AsyncSession],
    servicer: WebhookServicer,
    receiver: WebhookReceiver,
    start_worker: Worker,
) -> None:
    alice = user()
    endpoint = await create(servicer, alice, receiver)
    for seq in range(40):
        await record(sessions, event(alice, seq))
    await start_worker()
    await start_worker()
    await settled(servicer, alice, endpoint.id, 40)
    assert len(receiver.delivered()) == 40
    assert len(receiver.received()) == 40
    async with sessions.begin() as session:
        count = await session.scalar(
            select(func.count())
            .select_from(Delivery)
            .where(Delivery.endpoint_id == uuid.UUID(endpoint.id))
        )
    assert count == 40


async def test_events_reach_only_their_own_users_matching_endpoints(
    sessions: async_sessionmaker[AsyncSession],
    servicer: WebhookServicer,
    start_worker: Worker,
) -> None:
    alice, bob = user(), user()
    with (
        WebhookReceiver() as alice_all,
        WebhookReceiver() as alice_status,
        WebhookReceiver() as bobs,
    ):
        await create(servicer, alice, alice_all)
        await create(servicer, alice, alice_status, types=("execution.status",))
        await create(servicer, bob, bobs)
        await record(sessions, event(alice, 1, "node.output"))
        await record(sessions, event(alice, 2, "execution.status"))
        await start_worker()
        await until(lambda: len(alice_all.delivered()) == 2 and len(alice_status.delivered()) == 1)
        await asyncio.sleep(0.2)  # absence
        assert bobs.received() == []
        assert [r.json()["type"] for r in alice_status.received()] == ["execution.status"]
        # Bob cannot see or touch Alice's endpoints.
        [alice_endpoint] = [
            e
            for e in (
                await servicer.ListEndpoints(
                    pb.ListEndpointsRequest(user_id=alice),
                    None,  # type: ignore[arg-type]
                )
            ).endpoints
            if e.event_types == ["*"]
        ]
        with pytest.raises(NotFound):
            await endpoint_of(servicer, bob, alice_endpoint.id)
        with pytest.raises(NotFound):
            await deliveries(servicer, bob, alice_endpoint.id)
        with pytest.raises(NotFound):
            await servicer.DeleteEndpoint(
                pb.DeleteEndpointRequest(user_id=bob, endpoint_id=alice_endpoint.id),
                None,  # type: ignore[arg-type]
            )


async def test_limits_and_refusals_name_what_is_wrong(servicer: WebhookServicer) -> None:
    alice = user()
    for _ in range(3):
        await servicer.CreateEndpoint(
            pb.CreateEndpointRequest(user_id=alice, url="http://127.0.0.1:9/hook"),
            None,  # type: ignore[arg-type]
        )
    with pytest.raises(FailedPrecondition) as limit:
        await servicer.CreateEndpoint(
            pb.CreateEndpointRequest(user_id=alice, url="http://127.0.0.1:9/hook"),
            None,  # type: ignore[arg-type]
        )
    assert limit.value.reason == "WEBHOOK_LIMIT_REACHED"
    with pytest.raises(InvalidArgument) as metadata:
        await servicer.CreateEndpoint(
            pb.CreateEndpointRequest(user_id=user(), url="http://169.254.169.254/latest"),
            None,  # type: ignore[arg-type]
        )
    assert metadata.value.metadata == {"field": "url"}
    listed = await servicer.ListEndpoints(
        pb.ListEndpointsRequest(user_id=alice, page_size=2),
        None,  # type: ignore[arg-type]
    )
    assert len(listed.endpoints) == 2 and listed.next_page_token
    rest = await servicer.ListEndpoints(
        pb.ListEndpointsRequest(user_id=alice, page_size=2, page_token=listed.next_page_token),
        None,  # type: ignore[arg-type]
    )
    assert len(rest.endpoints) == 1 and not rest.next_page_token
    with pytest.raises(InvalidArgument):
        await servicer.ListEndpoints(
            pb.ListEndpointsRequest(user_id=alice, page_token="garbage!"),
            None,  # type: ignore[arg-type]
        )


async def test_the_migration_creates_exactly_the_declared_webhook_tables(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    tables = set(metadata.tables)

    def ours(name: str | None, type_: str, _parent: Any) -> bool:
        if type_ == "schema":
            return name == SCHEMA
        return type_ != "table" or f"{SCHEMA}.{name}" in tables

    def diff(connection: Connection) -> list[Any]:
        context = MigrationContext.configure(
            connection, opts={"include_schemas": True, "include_name": ours}
        )
        return list(compare_metadata(context, metadata))

    engine = sessions.kw["bind"]
    async with engine.connect() as connection:
        assert await connection.run_sync(diff) == []
