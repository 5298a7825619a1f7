"""Executor fixtures: the migrated schema, a real billing server, and the scheduler and a
runner in this process, on a RabbitMQ vhost and a database of the test session's own."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import Any

import pytest
from sqlalchemy import select

from agentloom_billing.server import RunningServer, start
from agentloom_billing.settings import BillingSettings
from agentloom_billing.tables import SCHEMA as BILLING_SCHEMA
from agentloom_common.migrations import upgrade
from agentloom_devkit.fake_openai import FakeOpenAI
from agentloom_executor import repository
from agentloom_executor.server import Infra, infra, start_runner, start_scheduler
from agentloom_executor.settings import ExecutorSettings
from agentloom_executor.status import Status
from agentloom_executor.tables import SCHEMA, Execution, QueuedEvent


@pytest.fixture(scope="session")
async def migrated(database_url: str) -> str:
    await asyncio.to_thread(upgrade, database_url, "agentloom_executor", SCHEMA)
    await asyncio.to_thread(upgrade, database_url, "agentloom_billing", BILLING_SCHEMA)
    return database_url


@pytest.fixture(scope="session")
async def billing_server(migrated: str) -> AsyncIterator[RunningServer]:
    running = await start(
        BillingSettings(database_url=migrated, listen_addr="127.0.0.1:0", starting_grant=1000)
    )
    yield running
    await running.stop(grace_s=0)


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def settings(
    migrated: str, amqp_url: str, billing_server: RunningServer, fake_openai: FakeOpenAI
) -> ExecutorSettings:
    return ExecutorSettings(
        database_url=migrated,
        amqp_url=amqp_url,
        billing_addr=f"127.0.0.1:{billing_server.port}",
        partitions=2,
        outbox_retry_after_s=0.5,
        outbox_poll_interval_s=0.2,
        node_timeout_s=5,
        lease_s=2,
        sweep_interval_s=0.2,
        redispatch_after_s=3,
        retry_initial_interval_s=0.1,
        retry_max_interval_s=0.5,
        max_running_per_user=2,
        max_node_executions=50,
        openai_base_url=fake_openai.base_url,
        openai_api_key="sk-test",
    )


@pytest.fixture(scope="session")
async def engine(settings: ExecutorSettings) -> AsyncIterator[Infra]:
    """Scheduler + runner sharing one process here; in production each is its own."""
    async with infra(settings) as shared:
        await start_scheduler(settings, shared)
        _runner, channels = await start_runner(settings, shared)
        yield shared
        for channel in channels:
            await channel.close()


Submit = Callable[[Infra, dict[str, Any], dict[str, Any], str], Awaitable[str]]
WaitTerminal = Callable[[Infra, str], Awaitable[Execution]]


@pytest.fixture
def submit() -> Submit:
    """Create an execution as the executions API does (graph given inline), and send it."""
    return _submit


@pytest.fixture
def wait_terminal() -> WaitTerminal:
    """Poll the database until the execution has ended."""
    return _wait_terminal


@pytest.fixture
def wait_numbered() -> Callable[[Infra, str], Awaitable[None]]:
    """Wait until the event relay has numbered every event the execution recorded (moved
    from `event_queue` into `execution_events`)."""
    return _wait_numbered


@pytest.fixture
def stop() -> Callable[[Infra, str], Awaitable[None]]:
    """Stop an execution as the executions API does."""

    async def _stop(shared: Infra, execution_id: str) -> None:
        async with shared.sessions.begin() as session:
            execution = await repository.lock_execution(session, execution_id)
            assert execution is not None
            rows = await repository.end_execution(
                session, execution, Status.CANCELLED, shared.topology
            )
        await shared.outbox.flush(rows)

    return _stop


async def _submit(
    shared: Infra, graph: dict[str, Any], inputs: dict[str, Any], user_id: str
) -> str:
    async with shared.sessions.begin() as session:
        execution, row = await repository.create_execution(
            session,
            topology=shared.topology,
            user_id=user_id,
            graph_id="g-test",
            graph_version=1,
            graph=graph,
            inputs=inputs,
            credentials_inputs={},
        )
    await shared.outbox.flush([row])
    return str(execution.id)


async def _wait_terminal(shared: Infra, execution_id: str, timeout_s: float = 20) -> Execution:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        async with shared.sessions() as session:
            execution = await session.get(Execution, repository.parse_uuid(execution_id))
            assert execution is not None
            if execution.ended_at is not None:
                return execution
        if loop.time() > deadline:
            raise TimeoutError(f"execution still {execution.status}")
        await asyncio.sleep(0.05)


async def _wait_numbered(shared: Infra, execution_id: str, timeout_s: float = 10) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    while True:
        async with shared.sessions() as session:
            queued = await session.scalar(
                select(QueuedEvent.id)
                .where(QueuedEvent.execution_id == repository.parse_uuid(execution_id))
                .limit(1)
            )
        if queued is None:
            return
        if loop.time() > deadline:
            raise TimeoutError("events of the execution are still queued")
        await asyncio.sleep(0.05)
