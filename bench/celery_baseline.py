"""The baseline in the same run: Celery over the same RabbitMQ (a vhost of its own) with a
Redis result backend (a database number of its own), and as many worker processes as the
platform has runners. A chain of no-op tasks gives the latency per hop, independent no-op
tasks the throughput; every result is checked."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis
from celery import chain, group  # type: ignore[import-untyped]

from agentloom_devkit import resources
from bench.celery_app import NOOP, QUEUE, create_app
from bench.checks import Checks
from bench.config import ROOT, BenchConfig
from bench.memory import rss_mb
from bench.stats import median_run, rate, summary_ms


def _start_worker(config: BenchConfig, env: dict[str, str], log: Path) -> subprocess.Popen[bytes]:
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("wb") as out:
        return subprocess.Popen(
            [
                sys.executable, "-m", "celery", "-A", "bench.celery_worker", "worker",
                "--pool", "prefork", "--concurrency", str(config.celery_workers),
                "--queues", QUEUE, "--hostname", f"bench-{os.getpid()}@%h",
                "--without-gossip", "--without-mingle", "--without-heartbeat",
                "--loglevel", "WARNING",
            ],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )  # fmt: skip


def _stop_worker(worker: subprocess.Popen[bytes]) -> None:
    if worker.poll() is None:
        worker.send_signal(signal.SIGTERM)  # warm shutdown: the worker stops its children
    try:
        worker.wait(20)
    except subprocess.TimeoutExpired:
        os.killpg(worker.pid, signal.SIGKILL)  # the worker's own process group, started here
        worker.wait()


def _chain_runs(
    app: Any, config: BenchConfig, checks: Checks, runs: int, label: str
) -> list[float]:
    latencies: list[float] = []
    for i in range(runs):
        value = f"celery-{label}-{i}"
        first = app.signature(NOOP, args=(value,))
        rest = [app.signature(NOOP) for _ in range(config.chain_nodes - 1)]
        started = time.perf_counter()
        got = chain(first, *rest).apply_async().get(timeout=60)
        latencies.append(time.perf_counter() - started)
        checks.record(label, value, None if got == value else f"chain returned {got!r}")
    return latencies


def _throughput(app: Any, config: BenchConfig, checks: Checks) -> dict[str, Any]:
    """`throughput_runs` batches of independent tasks: the median batch (by rate), and
    every batch's figures."""
    batches = [_batch(app, config, checks) for _ in range(config.throughput_runs)]
    return {**median_run(batches, "tasks_per_s"), "runs": batches}


def _batch(app: Any, config: BenchConfig, checks: Checks) -> dict[str, Any]:
    tasks = group(app.signature(NOOP, args=(i,)) for i in range(config.celery_tasks))
    started = time.perf_counter()
    got = tasks.apply_async().get(timeout=config.wait_timeout_s)
    took = time.perf_counter() - started
    for i in range(config.celery_tasks):
        value = got[i] if i < len(got) else None
        checks.record("Celery tasks", str(i), None if value == i else f"returned {value!r}")
    return {
        "tasks": config.celery_tasks,
        "seconds": round(took, 3),
        "tasks_per_s": round(rate(config.celery_tasks, took), 1),
    }


def run_celery(config: BenchConfig, checks: Checks) -> dict[str, Any]:
    """Start `celery_workers` worker processes, measure, stop them, clean up after."""
    vhost = resources.unique_name("agentloom_bench_celery")
    resources.create_vhost(vhost)
    broker = resources.amqp_url(vhost)
    backend = f"redis://127.0.0.1:6379/{config.celery_redis_db}"
    env = {**os.environ, "BENCH_CELERY_BROKER": broker, "BENCH_CELERY_BACKEND": backend}
    app = create_app(broker, backend)
    worker = _start_worker(config, env, config.log_dir / "celery-worker.log")
    try:
        # The first round trip also waits for the worker to be up.
        app.signature(NOOP, args=("ready",)).apply_async().get(timeout=60)
        rss_idle = rss_mb(worker.pid)
        _chain_runs(app, config, checks, config.warmup_runs, "Celery warm-up")
        latencies = _chain_runs(app, config, checks, config.celery_chain_runs, "Celery chain")
        summary = summary_ms(latencies)
        throughput = _throughput(app, config, checks)
        return {
            "worker_processes": config.celery_workers,
            "chain": summary,
            "per_hop_p50_ms": round(summary["p50_ms"] / config.chain_nodes, 3),
            "throughput": throughput,
            "worker_rss_idle_mb": rss_idle,
            "worker_rss_after_mb": rss_mb(worker.pid),
        }
    finally:
        _stop_worker(worker)
        app.close()
        store = redis.Redis.from_url(backend)
        for key in store.scan_iter("celery-task-meta-*", count=1000):
            store.delete(key)
        store.close()
        resources.delete_vhost(vhost)
