"""Wiring of the executor's three roles. Each is its own process:

- `api`: the ExecutionsService gRPC server (create, get, list, results, stop);
- `scheduler`: consumes the partition queues and drives executions;
- `runner`: consumes node jobs and runs blocks (scale these out).

Each also runs an outbox relay, so a message committed by a process that died before
publishing it is sent by any survivor.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import grpc
from aio_pika.abc import AbstractRobustConnection
from grpc_health.v1 import health
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from agentloom.billing.v1 import billing_pb2_grpc
from agentloom.executor.v1 import executor_pb2, executor_pb2_grpc, schedules_pb2_grpc
from agentloom.graphs.v1 import graphs_pb2_grpc
from agentloom.identity.v1 import credentials_pb2_grpc
from agentloom_blocks.registry import load_blocks
from agentloom_blocks.sdk import PlatformConfig
from agentloom_common import bus
from agentloom_common.db import create_engine, create_session_factory, warm_pool
from agentloom_common.grpc_client import create_channel
from agentloom_common.grpc_server import (
    RunningServer,
    create_server,
    graceful_stop,
    start_server,
)
from agentloom_executor.events import EventRelay
from agentloom_executor.graph_versions import GraphVersions
from agentloom_executor.maintenance import MaintenanceOptions, TableMaintenance
from agentloom_executor.outbox import Outbox
from agentloom_executor.retry import RetryPolicy
from agentloom_executor.runner import Runner, RunnerOptions
from agentloom_executor.schedule_wiring import (
    SCHEDULE_SERVICE_NAME,
    schedule_servicer,
    start_schedule_firing,
)
from agentloom_executor.scheduler import Scheduler
from agentloom_executor.scheduling import Limits
from agentloom_executor.servicer import ExecutionsServicer
from agentloom_executor.settings import ExecutorSettings
from agentloom_executor.sweeper import Sweeper, SweepOptions

SERVICE_NAME = executor_pb2.DESCRIPTOR.services_by_name["ExecutionsService"].full_name


@dataclass
class Infra:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    connection: AbstractRobustConnection
    publisher: bus.Publisher
    outbox: Outbox
    topology: bus.Topology
    background: list[asyncio.Task[None]]


@contextlib.asynccontextmanager
async def infra(settings: ExecutorSettings) -> AsyncIterator[Infra]:
    """Database, bus connection, declared topology, publisher, and a running outbox relay."""
    # No pre-ping: a ping per transaction was 7% of a runner's time, and every executor
    # transaction is retried (redelivery, sweeper) if a dead connection fails it.
    engine = create_engine(settings.database_url, pool_size=settings.db_pool_size, pre_ping=False)
    await warm_pool(engine)
    sessions = create_session_factory(engine)
    connection = await bus.connect(settings.amqp_url)
    topology = bus.Topology(partitions=settings.partitions)
    async with connection.channel() as channel:
        await topology.declare(channel)
    publisher = bus.Publisher(connection)
    await publisher.start()
    outbox = Outbox(
        sessions,
        publisher,
        retry_after_s=settings.outbox_retry_after_s,
        poll_interval_s=settings.outbox_poll_interval_s,
    )
    background = [asyncio.create_task(outbox.run_relay())]
    try:
        yield Infra(engine, sessions, connection, publisher, outbox, topology, background)
    finally:
        await outbox.drain()
        for task in background:
            task.cancel()
        for task in background:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await publisher.close()
        await connection.close()
        await engine.dispose()


@dataclass
class RunningApi:
    server: grpc.aio.Server
    port: int
    health: health.aio.HealthServicer
    graphs_channel: grpc.aio.Channel

    async def stop(self, grace_s: float = 1.0) -> None:
        await graceful_stop(self.server, self.health, grace_s)
        await self.graphs_channel.close()


def limits(settings: ExecutorSettings) -> Limits:
    """The per-execution and per-user limits, the same wherever an execution is started
    or advanced (the executions API, the scheduler, the runners)."""
    return Limits(
        max_node_executions=settings.max_node_executions,
        execution_timeout_s=settings.execution_timeout_s,
        max_running_per_user=settings.max_running_per_user,
    )


async def start_api(settings: ExecutorSettings, infra: Infra) -> RunningApi:
    graphs_channel = create_channel(settings.graphs_addr, deadline_s=settings.grpc_deadline_s)
    versions = GraphVersions(
        graphs_pb2_grpc.GraphsServiceStub(graphs_channel), trust_s=settings.graph_trust_s
    )
    await versions.listen(infra.connection)
    servicer = ExecutionsServicer(
        infra.sessions,
        infra.outbox,
        versions,
        load_blocks(),
        infra.topology,
        limits(settings),
    )
    schedules = schedule_servicer(infra, settings, graphs_channel)
    server, port, health_servicer = await create_server(
        [
            lambda s: executor_pb2_grpc.add_ExecutionsServiceServicer_to_server(servicer, s),
            lambda s: schedules_pb2_grpc.add_ScheduleServiceServicer_to_server(schedules, s),
        ],
        service_names=[SERVICE_NAME, SCHEDULE_SERVICE_NAME],
        address=settings.listen_addr,
    )
    return RunningApi(server, port, health_servicer, graphs_channel)


async def start_health(settings: ExecutorSettings) -> RunningServer:
    """The scheduler and runners serve only gRPC health (for probes), once consuming."""
    return await start_server([], service_names=[], address=settings.listen_addr)


async def start_scheduler(settings: ExecutorSettings, infra: Infra) -> Scheduler:
    scheduler = Scheduler(
        infra.sessions, infra.outbox, load_blocks(), infra.topology, limits(settings)
    )
    await scheduler.start(infra.connection, settings.scheduler_prefetch)
    sweeper = Sweeper(
        infra.sessions,
        infra.outbox,
        infra.topology,
        SweepOptions(
            interval_s=settings.sweep_interval_s,
            redispatch_after_s=settings.redispatch_after_s,
            max_lost_attempts=settings.max_lost_attempts,
        ),
        scheduler.end_timed_out,
    )
    infra.background.append(asyncio.create_task(sweeper.run()))
    relay = EventRelay(
        infra.sessions,
        infra.publisher,
        poll_interval_s=settings.events_poll_interval_s,
        retention_s=settings.events_retention_s,
    )
    infra.background.append(asyncio.create_task(relay.run()))
    maintenance = TableMaintenance(
        infra.engine,
        MaintenanceOptions(
            interval_s=settings.maintenance_interval_s,
            min_dead_rows=settings.maintenance_min_dead_rows,
            dead_fraction=settings.maintenance_dead_fraction,
        ),
    )
    infra.background.append(asyncio.create_task(maintenance.run()))
    start_schedule_firing(settings, infra)
    return scheduler


def platform_config(settings: ExecutorSettings) -> PlatformConfig:
    """The platform's defaults that blocks see (its own credentials, network policy)."""
    return PlatformConfig(
        openai_base_url=settings.openai_base_url,
        openai_api_key=settings.openai_api_key,
        anthropic_base_url=settings.anthropic_base_url,
        anthropic_api_key=settings.anthropic_api_key,
        ollama_base_url=settings.ollama_base_url,
        allow_private_network=settings.allow_private_network,
        allowed_networks=settings.allowed_networks,
        http_max_response_bytes=settings.http_max_response_bytes,
        max_wait_s=settings.node_timeout_s,
        smtp_host=settings.smtp_host,
        smtp_port=settings.smtp_port,
        smtp_username=settings.smtp_username,
        smtp_password=settings.smtp_password,
        smtp_security=settings.smtp_security,
    )


async def start_runner(
    settings: ExecutorSettings, infra: Infra
) -> tuple[Runner, list[grpc.aio.Channel]]:
    billing_channel = create_channel(settings.billing_addr, deadline_s=settings.grpc_deadline_s)
    graphs_channel = create_channel(settings.graphs_addr, deadline_s=settings.grpc_deadline_s)
    credentials_channel = create_channel(
        settings.credentials_grpc_addr, deadline_s=settings.grpc_deadline_s
    )
    runner = Runner(
        infra.sessions,
        infra.outbox,
        load_blocks(),
        infra.topology,
        billing_pb2_grpc.BillingServiceStub(billing_channel),
        graphs_pb2_grpc.GraphsServiceStub(graphs_channel),
        credentials_pb2_grpc.CredentialsServiceStub(credentials_channel),
        config=platform_config(settings),
        options=RunnerOptions(
            limits=limits(settings),
            node_timeout_s=settings.node_timeout_s,
            lease_s=settings.lease_s,
            retry=RetryPolicy(
                max_attempts=settings.retry_max_attempts,
                initial_interval_s=settings.retry_initial_interval_s,
                backoff=settings.retry_backoff,
                max_interval_s=settings.retry_max_interval_s,
            ),
            max_depth=settings.max_depth,
        ),
    )
    await runner.start(infra.connection, settings.runner_concurrency)
    return runner, [billing_channel, graphs_channel, credentials_channel]
