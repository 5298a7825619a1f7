"""W4: executions created at a fixed rate, each read back once right after it was created.

Open loop: request i is sent at t0 + i/rate whether or not earlier ones have answered, so a
slow gateway shows up as latency (and errors) instead of quietly lowering the rate."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from typing import Any

from bench import graphs
from bench.api import TRANSPORT_ERRORS, Api
from bench.checks import Checks
from bench.config import BenchConfig
from bench.stats import slowest_by_window, summary_ms

WARMUP_POLL_S = 0.02


async def api_load(api: Api, config: BenchConfig, checks: Checks) -> dict[str, Any]:
    graph_id = await api.create_graph(graphs.echo_graph())
    # Unmeasured, as W1's: the first execution of a new graph fetches and parses it (in
    # the executions API and the runner), ~40 ms on an idle platform, and at 100/s the
    # requests that arrive meanwhile queue behind it for half a second.
    for i in range(config.warmup_runs):
        value = f"w4-warm-up-{i}"
        started = await api.execute(graph_id, {"text": value})
        execution = await api.wait(started.execution_id, config.wait_timeout_s, WARMUP_POLL_S)
        problem = graphs.check_execution(execution, graphs.chain_expected(value, 2))
        checks.record("W4 warm-up", started.execution_id, problem)
    total = int(config.w4_rate * config.w4_seconds)
    post_s: list[float] = []
    get_s: list[float] = []
    # (when the request was due, seconds into the window; how long it took): where in the
    # window the slow ones are tells a stall from a slow steady state.
    post_at: list[tuple[float, float]] = []
    errors: Counter[str] = Counter()
    created: dict[str, str] = {}

    async def one(i: int) -> None:
        value = f"w4-{i}"
        try:
            response, _, took = await api.post_execute(graph_id, {"text": value})
        except TRANSPORT_ERRORS as error:
            errors[f"POST {type(error).__name__}"] += 1
            return
        if response.status_code != 201:
            errors[f"POST {response.status_code}"] += 1
            return
        post_s.append(took)
        post_at.append((i / config.w4_rate, took))
        execution_id = str(response.json()["id"])
        created[execution_id] = value
        started = time.perf_counter()
        try:
            read = await api.request("GET", f"/api/executions/{execution_id}")
        except TRANSPORT_ERRORS as error:
            errors[f"GET {type(error).__name__}"] += 1
            return
        if read.status_code != 200:
            errors[f"GET {read.status_code}"] += 1
            return
        get_s.append(time.perf_counter() - started)

    loop = asyncio.get_running_loop()
    t0 = loop.time()
    tasks: list[asyncio.Task[None]] = []
    for i in range(total):
        await asyncio.sleep(max(0.0, t0 + i / config.w4_rate - loop.time()))
        tasks.append(asyncio.create_task(one(i)))
    sending_s = loop.time() - t0
    await asyncio.gather(*tasks)
    answered_s = loop.time() - t0

    latest = await api.wait_all(graph_id, set(created), config.wait_timeout_s, poll_s=1.0)
    drained_s = loop.time() - t0
    for execution_id, value in created.items():
        execution = latest.get(execution_id, {"status": "NOT LISTED"})
        checks.record(
            "W4", execution_id, graphs.check_execution(execution, graphs.chain_expected(value, 2))
        )
    return {
        "target_rate_per_s": config.w4_rate,
        "seconds": config.w4_seconds,
        "requests": total,
        "achieved_rate_per_s": round(total / sending_s, 1) if sending_s > 0 else 0.0,
        "all_answered_after_s": round(answered_s, 3),
        "all_executions_done_after_s": round(drained_s, 3),
        "post_execute": summary_ms(post_s),
        "get_execution": summary_ms(get_s),
        "errors": sum(errors.values()),
        "errors_by_kind": dict(errors),
        "post_execute_slowest_ms_by_quarter_second": slowest_by_window(post_at, 0.25),
    }
