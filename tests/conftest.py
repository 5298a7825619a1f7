"""The whole platform for the cross-service tests (end-to-end, faults): every service its
own process (two schedulers, two runners), on real PostgreSQL, RabbitMQ and gRPC, in a
database and vhost of this test session's own, on free ports, with the LLM blocks answered
by a local OpenAI-compatible server. One stack for the session keeps the suite fast; the
fault tests leave it healthy (C1-C7) for whatever runs after them."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from agentloom_devkit import resources
from agentloom_devkit.fake_openai import FakeOpenAI
from agentloom_devkit.stack import Ports, Stack, StackConfig

# Short leases and sweeps so that fault recovery takes seconds, not minutes.
FAST_RECOVERY = {
    "AGENTLOOM_LEASE_S": "2",
    "AGENTLOOM_SWEEP_INTERVAL_S": "0.5",
    "AGENTLOOM_REDISPATCH_AFTER_S": "5",
    "AGENTLOOM_OUTBOX_RETRY_AFTER_S": "1",
    "AGENTLOOM_NODE_TIMEOUT_S": "30",
    "AGENTLOOM_MAX_RUNNING_PER_USER": "50",
    # Small pools: the suite's stack and its in-process servers share one PostgreSQL
    # (100 connections by default) with whatever else runs on the machine.
    "AGENTLOOM_DB_POOL_SIZE": "3",
    "AGENTLOOM_DATABASE_POOL_SIZE": "3",
    # The security tests mint JWTs with the gateway's own command and grep every log line.
    "AGENTLOOM_JWT_SECRET": "tests-jwt-secret-" + uuid.uuid4().hex,
    "AGENTLOOM_LOG_LEVEL": "DEBUG",
    "AGENTLOOM_RATE_LIMIT_PREFIX": f"test:{uuid.uuid4().hex}:ratelimit:",
    "AGENTLOOM_RATE_LIMIT_READ": "100000",
    "AGENTLOOM_RATE_LIMIT_WRITE": "100000",
    "AGENTLOOM_RATE_LIMIT_EXECUTE": "100000",
    "AGENTLOOM_RATE_LIMIT_ADMIN": "100000",
    # Webhooks: receivers are local servers; retries in milliseconds (5 s -> 1 ms, 5 min ->
    # 60 ms, ...); the authorization matrix creates an endpoint per route it checks.
    "AGENTLOOM_WEBHOOK_ALLOW_PRIVATE_TARGETS": "true",
    "AGENTLOOM_WEBHOOK_RETRY_SCALE": "0.0002",
    "AGENTLOOM_WEBHOOK_POLL_INTERVAL_S": "0.2",
    "AGENTLOOM_WEBHOOK_MAX_ENDPOINTS_PER_USER": "1000",
    # WebSocket clients that stop reading are cut off after this (gateway and notify).
    "AGENTLOOM_WS_SEND_TIMEOUT_S": "2",
    # Schedules: second-level crons and a quick poll so slots fire within the test's seconds.
    "AGENTLOOM_SCHEDULE_MIN_INTERVAL_S": "1",
    "AGENTLOOM_SCHEDULE_POLL_INTERVAL_S": "0.2",
    "AGENTLOOM_MAX_SCHEDULES_PER_USER": "20",
}


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def stack(
    fake_openai: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    config = StackConfig(
        database=resources.unique_name("agentloom_e2e"),
        vhost=resources.unique_name("agentloom_e2e"),
        ports=Ports.free(),
        runners=2,
        schedulers=2,
        log_dir=tmp_path_factory.mktemp("stack-logs"),
        openai_base_url=fake_openai.base_url,
        openai_api_key="sk-test-platform-key",
        extra_env=FAST_RECOVERY,
    )
    running = Stack(config)
    try:
        await running.prepare()
        await running.start()
        yield running
    finally:
        running.stop()
        await resources.drop_database(config.database)
        resources.delete_vhost(config.vhost)
