"""W1-W3: chains one at a time, chains all at once, fan-outs. Latencies run from the moment
the client sends `POST .../execute` to the `ended_at` the executor records (same machine, same
clock), so the client's polling interval does not blur them."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from bench import graphs
from bench.api import TRANSPORT_ERRORS, Api, ApiError, Started, epoch
from bench.checks import Checks
from bench.config import BenchConfig
from bench.stats import median_run, rate, summary_ms

LONE_POLL_S = 0.02


def _latency(started: Started, execution: dict[str, Any]) -> float | None:
    ended = epoch(execution.get("ended_at"))
    return None if ended is None else ended - started.sent_at


def _server_latency(execution: dict[str, Any]) -> float | None:
    created, ended = epoch(execution.get("created_at")), epoch(execution.get("ended_at"))
    return None if created is None or ended is None else ended - created


async def lone_chain(api: Api, config: BenchConfig, checks: Checks) -> dict[str, Any]:
    """W1: the chain executed `w1_runs` times, one after another."""
    graph_id = await api.create_graph(graphs.chain_graph(config.chain_nodes))
    latencies: list[float] = []
    server: list[float] = []
    post: list[float] = []
    for i in range(config.warmup_runs + config.w1_runs):
        value = f"w1-{i}"
        started = await api.execute(graph_id, {"text": value})
        execution = await api.wait(started.execution_id, config.wait_timeout_s, LONE_POLL_S)
        results = await api.results(started.execution_id)
        expected = graphs.chain_expected(value, config.chain_nodes)
        problem = graphs.check_results(results, expected)
        if i < config.warmup_runs:
            checks.record("warm-up", started.execution_id, problem)
            continue
        checks.record("W1", started.execution_id, problem)
        latency, inside = _latency(started, execution), _server_latency(execution)
        if problem is None and latency is not None and inside is not None:
            latencies.append(latency)
            server.append(inside)
            post.append(started.post_s)
    summary = summary_ms(latencies)
    per_node = summary.get("p50_ms", 0) / config.chain_nodes
    return {
        "latency": summary,
        "latency_inside_platform": summary_ms(server),
        "post_execute": summary_ms(post),
        "per_node_p50_ms": round(per_node, 3),
    }


async def _try_execute(api: Api, graph_id: str, inputs: dict[str, Any]) -> Started | str:
    """The execution created, or why it was not (a wrong answer is a finding, not a crash)."""
    try:
        return await api.execute(graph_id, inputs)
    except (ApiError, *TRANSPORT_ERRORS) as error:
        return f"{type(error).__name__}: {error}"[:300]


async def _burst(
    api: Api,
    graph_id: str,
    inputs: list[dict[str, Any]],
    expected: list[graphs.Expected],
    workload: str,
    config: BenchConfig,
    checks: Checks,
) -> dict[str, Any]:
    """Start one execution per input at once, wait for all, check each, and measure node
    executions per second from the first request sent to the last execution ended."""
    t0 = time.time()
    answers = await asyncio.gather(*(_try_execute(api, graph_id, item) for item in inputs))
    posted = time.time()
    started: list[Started] = []
    wanted: list[graphs.Expected] = []
    for i, (answer, want) in enumerate(zip(answers, expected, strict=True)):
        if isinstance(answer, str):
            checks.record(workload, f"request {i}", f"not created: {answer}")
        else:
            started.append(answer)
            wanted.append(want)
    latest = await api.wait_all(graph_id, {s.execution_id for s in started}, config.wait_timeout_s)
    latencies: list[float] = []
    nodes = 0
    last_end = t0
    for item, want in zip(started, wanted, strict=True):
        execution = latest.get(item.execution_id, {"status": "NOT LISTED"})
        problem = graphs.check_execution(execution, want)
        if problem is None and want.node_executions <= 500:
            problem = graphs.check_results(await api.results(item.execution_id), want)
        checks.record(workload, item.execution_id, problem)
        ended = epoch(execution.get("ended_at"))
        if ended is not None:
            nodes += int(execution["stats"]["node_count"])
            last_end = max(last_end, ended)
            latencies.append(ended - item.sent_at)
    window = last_end - t0
    return {
        "started_at": t0,
        "executions": len(started),
        "not_created": len(inputs) - len(started),
        "node_executions": nodes,
        "window_s": round(window, 3),
        "posting_s": round(posted - t0, 3),
        "node_executions_per_s": round(rate(nodes, window), 1),
        "latency": summary_ms(latencies),
        "post_execute": summary_ms([item.post_s for item in started]),
    }


async def concurrent_chains(api: Api, config: BenchConfig, checks: Checks) -> dict[str, Any]:
    """W2: `w2_executions` executions of the chain started at once, `throughput_runs`
    times; the figures of the median burst (by rate), and every burst's rate."""
    graph_id = await api.create_graph(graphs.chain_graph(config.chain_nodes))
    bursts = []
    for run in range(config.throughput_runs):
        values = [f"w2-{run}-{i}" for i in range(config.w2_executions)]
        bursts.append(
            await _burst(
                api,
                graph_id,
                [{"text": value} for value in values],
                [graphs.chain_expected(value, config.chain_nodes) for value in values],
                "W2",
                config,
                checks,
            )
        )
    return {**median_run(bursts, "node_executions_per_s"), "runs": bursts}


async def fan_out(api: Api, config: BenchConfig, checks: Checks) -> dict[str, Any]:
    """W3: the fan-out graph alone (a few times, one after another), then many at once."""
    graph_id = await api.create_graph(graphs.fanout_graph(config.w3_items))
    expected = graphs.fanout_expected(config.w3_items)
    alone = [
        await _burst(api, graph_id, [{}], [expected], "W3 alone", config, checks)
        for _ in range(config.w3_alone_runs)
    ]
    rates = sorted(run["node_executions_per_s"] for run in alone)
    together = await _burst(
        api,
        graph_id,
        [{}] * config.w3_concurrent,
        [expected] * config.w3_concurrent,
        "W3 concurrent",
        config,
        checks,
    )
    return {
        "node_executions_per_execution": expected.node_executions,
        "alone_runs": alone,
        "alone_node_executions_per_s": rates[len(rates) // 2] if rates else 0.0,
        "concurrent": together,
    }
