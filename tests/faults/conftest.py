"""Fault tests: the whole platform as processes, a batch of executions, a fault injected
mid-batch, then the checks C1-C7 of shared/RELIABILITY.md. Each test adds a line to the
report printed at the end of the run (ran, completed, lost, duplicated)."""

from __future__ import annotations

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest

from agentloom_devkit import resources
from agentloom_devkit.stack import Stack

sys.path[:0] = [str(Path(__file__).resolve().parent)]

from invariants import REPORTS, Batch  # noqa: E402


@pytest.fixture
async def batch(stack: Stack) -> AsyncIterator[Batch]:
    user_id, api_key = await stack.create_user(
        f"faults-{resources.unique_name('u')}@example.com", "Faults"
    )
    async with httpx.AsyncClient(
        base_url=stack.gateway_url,
        headers={"X-API-Key": api_key},
        timeout=30,
    ) as client:
        yield Batch(stack, client, user_id)


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not REPORTS:
        return
    terminalreporter.section("fault tests: executions ran / completed / lost / duplicated")
    for line in REPORTS:
        terminalreporter.write_line(line)
