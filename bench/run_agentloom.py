"""The Agentloom half of the run: the whole platform started with the devkit's Stack (a
database, a vhost and ports of its own), a user with an API key, then W1-W5 through the
gateway. Everything it created is removed at the end, whatever happened."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
import psutil

from agentloom_devkit import resources
from agentloom_devkit.stack import Ports, Stack, StackConfig, free_port
from bench import memory, workloads
from bench.api import TRANSPORT_ERRORS, Api, ApiError
from bench.api_load import api_load
from bench.checks import Checks
from bench.config import BenchConfig

IDLE_SETTLE_S = 3.0
# Before each workload: the machine's CPU, over `SETTLE_SAMPLE_S`, below this share of all
# its cores, waited for at most `SETTLE_TIMEOUT_S`.
SETTLE_CPU_PERCENT = 20.0
SETTLE_SAMPLE_S = 0.5
SETTLE_TIMEOUT_S = 30.0
UNLIMITED = "1000000000"


def operator_limits(config: BenchConfig) -> dict[str, str]:
    """Operator settings raised so that per-user quotas do not cap what is measured: the
    benchmark's one user would otherwise hit the rate limits (W4 runs 100 executions/s), the
    running-executions-per-user cap (W2 starts 200 at once), the node-executions-per-execution
    limit (W5 runs items + 1) and its starting credits. The limiting code still runs."""
    return {
        "AGENTLOOM_STARTING_GRANT": UNLIMITED,
        "AGENTLOOM_RATE_LIMIT_READ": UNLIMITED,
        "AGENTLOOM_RATE_LIMIT_WRITE": UNLIMITED,
        "AGENTLOOM_RATE_LIMIT_EXECUTE": UNLIMITED,
        "AGENTLOOM_MAX_RUNNING_PER_USER": str(max(config.w2_executions, 1000)),
        "AGENTLOOM_MAX_NODE_EXECUTIONS": str(max(10_000, 2 * config.w5_items + 10)),
    }


def stack_config(config: BenchConfig) -> StackConfig:
    return StackConfig(
        database=resources.unique_name("agentloom_bench"),
        vhost=resources.unique_name("agentloom_bench"),
        ports=Ports.free(),
        runners=config.runners,
        log_dir=config.log_dir / "agentloom",
        extra_env={
            **operator_limits(config),
            # The gateway's internal credentials server: a free port, not the dev default.
            "AGENTLOOM_CREDENTIALS_GRPC_ADDR": f"127.0.0.1:{free_port()}",
        },
    )


async def settle() -> float:
    """Wait until the machine is idle again (what the previous workload left behind is
    done: W3's fan-outs leave ~13,000 events for the relay and notify to deliver, 2-3 s of
    work that overlapped W4's first seconds), so that each workload is measured on its own.
    Returns the seconds waited; gives up after `SETTLE_TIMEOUT_S` (a busy machine)."""
    started = time.monotonic()
    while time.monotonic() - started < SETTLE_TIMEOUT_S:
        busy = await asyncio.to_thread(psutil.cpu_percent, SETTLE_SAMPLE_S)
        if busy < SETTLE_CPU_PERCENT:
            break
    return round(time.monotonic() - started, 1)


def _log(message: str) -> None:
    print(f"[bench] {message}", flush=True)


Workload = Callable[[Api, BenchConfig, Checks], Awaitable[dict[str, Any]]]


def _long_iteration(stack: Stack) -> Workload:
    async def run(api: Api, config: BenchConfig, checks: Checks) -> dict[str, Any]:
        return await memory.long_iteration(api, stack, config, checks)

    return run


async def _workloads(stack: Stack, config: BenchConfig, checks: Checks) -> dict[str, Any]:
    _, api_key = await stack.create_user("bench@agentloom.local", "Bench")
    api = Api(stack.gateway_url, api_key, connections=config.client_connections)
    out: dict[str, Any] = {"operator_settings": operator_limits(config)}
    try:
        await asyncio.sleep(IDLE_SETTLE_S)
        out["rss_idle_mb"] = memory.service_rss_mb(stack)
        steps: list[tuple[str, str, Workload]] = [
            ("W1", "lone chain", workloads.lone_chain),
            (
                "W2",
                f"{config.throughput_runs} x {config.w2_executions} chains at once",
                workloads.concurrent_chains,
            ),
            ("W3", "fan-out, alone then at once", workloads.fan_out),
            ("W4", f"{config.w4_rate:g} executions/s for {config.w4_seconds:g} s", api_load),
            ("W5", f"one execution over {config.w5_items} items", _long_iteration(stack)),
        ]
        for key, title, run in steps:
            settled_s = await settle()
            _log(f"Agentloom {key}: {title}")
            started = time.monotonic()
            try:
                out[key] = await run(api, config, checks)
            except (ApiError, *TRANSPORT_ERRORS) as error:
                # A wrong answer from the platform is a finding: record it, go on.
                checks.record(key, "workload", f"aborted: {type(error).__name__}: {error}"[:400])
                out[key] = {"aborted": str(error)[:400]}
            out[key]["took_s"] = round(time.monotonic() - started, 1)
            out[key]["settled_before_s"] = settled_s
            if key == "W2":
                out["rss_after_w2_mb"] = memory.service_rss_mb(stack)
    finally:
        await api.aclose()
    return out


async def run_agentloom(config: BenchConfig, checks: Checks) -> dict[str, Any]:
    """Start the platform, run W1-W5, stop it and drop its database and vhost."""
    stack = Stack(stack_config(config))
    _log(f"starting the platform ({config.runners} runners), logs in {stack.config.log_dir}")
    try:
        await stack.prepare()
        await stack.start()
        result = await _workloads(stack, config, checks)
        stack.check_alive()
        return result
    finally:
        stack.stop()
        await remove_stack(stack)


async def remove_stack(stack: Stack, attempts: int = 10) -> None:
    """Drop the stack's database and vhost. The shared servers may be restarting (another
    session's fault test): retry a while, then say what is left rather than lose the run."""
    for attempt in range(attempts):
        try:
            await resources.drop_database(stack.config.database)
            break
        except (OSError, asyncpg.PostgresError) as error:
            if attempt == attempts - 1:
                _log(f"could not drop database {stack.config.database}: {error}")
            await asyncio.sleep(2)
    await asyncio.to_thread(resources.delete_vhost, stack.config.vhost)
