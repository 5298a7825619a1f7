"""W5: resident memory of every service process (idle, after W2), and a long iteration that
watches the scheduler's and runners' memory while it runs."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import psutil

from agentloom_devkit.stack import Stack
from bench import graphs
from bench.api import Api, epoch
from bench.checks import Checks
from bench.config import BenchConfig

MB = 1024 * 1024
SAMPLE_EVERY_S = 0.5


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its children, in MiB (0 if it is gone)."""
    try:
        process = psutil.Process(pid)
        total = process.memory_info().rss
        for child in process.children(recursive=True):
            total += child.memory_info().rss
    except psutil.NoSuchProcess:
        return 0.0
    return round(total / MB, 1)


def service_rss_mb(stack: Stack) -> dict[str, float]:
    """RSS of each service process of the stack, by service name."""
    return {
        service.name: rss_mb(service.process.pid)
        for service in stack.processes
        if service.process is not None
    }


def _engine(name: str) -> bool:
    return name == "scheduler" or name.startswith("runner-")


async def long_iteration(
    api: Api, stack: Stack, config: BenchConfig, checks: Checks
) -> dict[str, Any]:
    """One execution stepping through `w5_items` items; stopped (and reported as not done)
    if it has not finished after `w5_timeout_s`."""
    graph_id = await api.create_graph(graphs.iteration_graph(config.w5_items))
    before = {name: mb for name, mb in service_rss_mb(stack).items() if _engine(name)}
    peak = dict(before)
    started = await api.execute(graph_id, {})
    deadline = time.monotonic() + config.w5_timeout_s
    execution: dict[str, Any] = {}
    while time.monotonic() < deadline:
        for name, mb in service_rss_mb(stack).items():
            if name in peak:
                peak[name] = max(peak[name], mb)
        execution = await api.execution(started.execution_id)
        if execution["status"] in graphs.TERMINAL:
            break
        await asyncio.sleep(SAMPLE_EVERY_S)
    completed = execution.get("status") in graphs.TERMINAL
    progress = (execution.get("stats") or {}).get("node_count", 0)
    if not completed:
        await api.stop(graph_id, started.execution_id)
        execution = await api.wait(started.execution_id, 30.0, 0.5)
    else:
        checks.record(
            "W5 iteration",
            started.execution_id,
            graphs.check_execution(execution, graphs.iteration_expected(config.w5_items)),
        )
    after = {name: mb for name, mb in service_rss_mb(stack).items() if _engine(name)}
    ended = epoch(execution.get("ended_at"))
    return {
        "items": config.w5_items,
        "completed": completed,
        "timeout_s": config.w5_timeout_s,
        "node_executions_done": progress if not completed else execution["stats"]["node_count"],
        "status": execution.get("status"),
        "seconds": round(ended - started.sent_at, 3) if completed and ended else None,
        "rss_before_mb": before,
        "rss_peak_mb": peak,
        "rss_after_mb": after,
        "growth_peak_mb": {name: round(peak[name] - before[name], 1) for name in before},
    }
