"""Fault tests: the whole platform as processes, a batch of executions, a fault injected
mid-batch, then the checks C1-C7 of shared/RELIABILITY.md. Each test adds a line to the
report printed at the end of the run (ran, completed, lost, duplicated)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import httpx
import pytest

from agentloom_devkit import resources
from agentloom_devkit.fake_openai import FakeOpenAI
from agentloom_devkit.stack import Ports, Stack, StackConfig

sys.path[:0] = [str(Path(__file__).resolve().parent)]

from invariants import REPORTS, Batch  # noqa: E402


@pytest.fixture(scope="session")
def fault_llm() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI()
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
async def fault_stack(
    fault_llm: FakeOpenAI, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    config = StackConfig(
        database=resources.unique_name("agentloom_faults"),
        vhost=resources.unique_name("agentloom_faults"),
        ports=Ports.free(),
        runners=2,
        schedulers=2,
        log_dir=tmp_path_factory.mktemp("fault-logs"),
        openai_base_url=fault_llm.base_url,
        openai_api_key="sk-faults",
        extra_env={
            "AGENTLOOM_LEASE_S": "2",
            "AGENTLOOM_SWEEP_INTERVAL_S": "0.5",
            "AGENTLOOM_REDISPATCH_AFTER_S": "5",
            "AGENTLOOM_OUTBOX_RETRY_AFTER_S": "1",
            "AGENTLOOM_MAX_RUNNING_PER_USER": "50",
            "AGENTLOOM_STARTING_GRANT": "100000",
        },
    )
    stack = Stack(config)
    try:
        await stack.prepare()
        await stack.start()
        yield stack
    finally:
        stack.stop()
        await resources.drop_database(config.database)
        resources.delete_vhost(config.vhost)


@pytest.fixture
async def batch(fault_stack: Stack) -> AsyncIterator[Batch]:
    user_id, api_key = await fault_stack.create_user(
        f"faults-{resources.unique_name('u')}@example.com", "Faults"
    )
    async with httpx.AsyncClient(
        base_url=fault_stack.gateway_url,
        headers={"X-API-Key": api_key},
        timeout=30,
    ) as client:
        yield Batch(fault_stack, client, user_id)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not REPORTS:
        return
    terminalreporter.section("fault tests: executions ran / completed / lost / duplicated")
    for line in REPORTS:
        terminalreporter.write_line(line)
