"""`python -m bench.profile [w1|w2|w3|w4] [--runs N] [--executions N]`: where the CPU goes.

Starts the platform as `python -m bench` does (its own database and vhost, the bench's operator
limits), then runs W1 (chains one after another), W2 (bursts of chains at once) or W3 (the
fan-outs at once) several times and prints, for each run, the rate or latency and the CPU
time every process spent inside the run's window per execution: each service, PostgreSQL
(all its backends), RabbitMQ and this client. On a 2-core box the sum of that column is what
caps W2's rate, so this is the table to read before and after a change (alternate the
variants: the box drifts by 10-20%).

Times nothing it asserts; checks every execution as the benchmark does."""

from __future__ import annotations

import argparse
import asyncio
import os
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import replace

import psutil

from agentloom_devkit.stack import Stack
from bench import api_load, workloads
from bench.api import Api
from bench.checks import Checks
from bench.config import BenchConfig
from bench.run_agentloom import remove_stack, stack_config

OTHERS = {"postgres": ("postgres",), "rabbitmq": ("beam.smp",)}


class CpuMeter:
    """CPU seconds per process group, sampled every `every_s` in a thread: the stack's
    services (with their children), PostgreSQL's and RabbitMQ's processes by name, and this
    process. `between(t0, t1)` is what each group spent between two wall-clock times."""

    def __init__(self, stack: Stack, every_s: float = 0.1) -> None:
        self.stack = stack
        self.every_s = every_s
        self.samples: list[tuple[float, dict[str, float]]] = []
        self._processes: dict[int, tuple[str, psutil.Process]] = {}
        self._last: dict[int, float] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _discover(self) -> None:
        found: dict[int, tuple[str, psutil.Process]] = {}
        for service in self.stack.processes:
            if service.process is None:
                continue
            try:
                root = psutil.Process(service.process.pid)
                for process in [root, *root.children(recursive=True)]:
                    found[process.pid] = (service.name, process)
            except psutil.Error:
                continue
        for process in psutil.process_iter(["name"]):
            for group, names in OTHERS.items():
                if process.info["name"] in names:
                    found[process.pid] = (group, process)
        me = psutil.Process(os.getpid())
        found[me.pid] = ("client", me)
        # Keep the objects seen before: a process that ended keeps its last reading.
        for pid, entry in found.items():
            self._processes.setdefault(pid, entry)

    def _sample(self) -> None:
        totals: dict[str, float] = {}
        for pid, (group, process) in self._processes.items():
            try:
                times = process.cpu_times()
                self._last[pid] = times.user + times.system
            except psutil.Error:
                pass  # ended: its last reading stands
            totals[group] = totals.get(group, 0.0) + self._last.get(pid, 0.0)
        self.samples.append((time.time(), totals))

    def _run(self) -> None:
        rounds = 0
        while not self._stop.is_set():
            if rounds % 20 == 0:
                self._discover()
            self._sample()
            rounds += 1
            self._stop.wait(self.every_s)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def _at(self, moment: float) -> dict[str, float]:
        for taken, totals in self.samples:
            if taken >= moment:
                return totals
        return self.samples[-1][1]

    def between(self, t0: float, t1: float) -> dict[str, float]:
        first, last = self._at(t0), self._at(t1)
        return {group: last[group] - first.get(group, 0.0) for group in last}


async def _w2(api: Api, config: BenchConfig, checks: Checks) -> Measured:
    """One burst; its window runs from the first request to the last execution's end."""
    result = await workloads.concurrent_chains(api, replace(config, throughput_runs=1), checks)
    t0 = result["started_at"]
    figure = f"{result['node_executions_per_s']:.0f} node exec/s"
    return figure, result["executions"], (t0, t0 + result["window_s"])


async def _w3(api: Api, config: BenchConfig, checks: Checks) -> Measured:
    """The fan-outs at once (after one alone, unmeasured: it creates the graph)."""
    result = await workloads.fan_out(api, replace(config, w3_alone_runs=1), checks)
    together = result["concurrent"]
    t0 = together["started_at"]
    figure = f"{together['node_executions_per_s']:.0f} node exec/s"
    return figure, together["executions"], (t0, t0 + together["window_s"])


async def _w1(api: Api, config: BenchConfig, checks: Checks) -> Measured:
    """The lone chains, warm-ups included; the window is the whole run."""
    t0 = time.time()
    result = await workloads.lone_chain(api, config, checks)
    latency = result["latency"]
    runs = config.w1_runs + config.warmup_runs
    return f"p50 {latency['p50_ms']:.1f} ms p99 {latency['p99_ms']:.1f} ms", runs, (t0, time.time())


async def _w4(api: Api, config: BenchConfig, checks: Checks) -> Measured:
    """Executions created at the W4 rate, each read once; the window runs from the first
    request to the last answer (the executions' own runs after it are not counted)."""
    t0 = time.time()
    result = await api_load.api_load(api, config, checks)
    post, get = result["post_execute"], result["get_execution"]
    figure = (
        f"POST p50 {post['p50_ms']:.0f} p99 {post['p99_ms']:.0f} ms, "
        f"GET p50 {get['p50_ms']:.0f} p99 {get['p99_ms']:.0f} ms, "
        f"answered in {result['all_answered_after_s']:.1f} s"
    )
    return figure, result["requests"], (t0, t0 + result["all_answered_after_s"])


Measured = tuple[str, int, tuple[float, float]]
WORKLOADS: dict[str, Callable[[Api, BenchConfig, Checks], Awaitable[Measured]]] = {
    "w1": _w1,
    "w2": _w2,
    "w3": _w3,
    "w4": _w4,
}


def _table(runs: list[tuple[str, int, dict[str, float]]]) -> str:
    groups = sorted({g for _, _, spent in runs for g in spent})
    lines = ["CPU ms per execution in the run's window"]
    lines.append("process".ljust(14) + "".join(f"run {i + 1}".rjust(10) for i in range(len(runs))))
    for group in groups:
        cells = "".join(f"{1000 * spent.get(group, 0) / max(n, 1):10.2f}" for _, n, spent in runs)
        lines.append(group.ljust(14) + cells)
    totals = "".join(f"{1000 * sum(spent.values()) / max(n, 1):10.2f}" for _, n, spent in runs)
    lines.append("total".ljust(14) + totals)
    lines.append("figure: " + " | ".join(figure for figure, _, _ in runs))
    return "\n".join(lines)


async def profile(workload: str, runs: int, config: BenchConfig) -> int:
    stack = Stack(stack_config(config))
    checks = Checks()
    try:
        await stack.prepare()
        await stack.start()
        _, api_key = await stack.create_user("profile@agentloom.local", "Profile")
        api = Api(stack.gateway_url, api_key, connections=config.client_connections)
        try:
            meter = CpuMeter(stack)
            meter.start()
            measured: list[tuple[str, int, dict[str, float]]] = []
            try:
                for _ in range(runs):
                    figure, executions, (t0, t1) = await WORKLOADS[workload](api, config, checks)
                    await asyncio.sleep(2 * meter.every_s)
                    measured.append((figure, executions, meter.between(t0, t1)))
                    print(f"[profile] {figure} ({t1 - t0:.2f} s window)", flush=True)
            finally:
                meter.stop()
        finally:
            await api.aclose()
        stack.check_alive()
    finally:
        stack.stop()
        await remove_stack(stack)
    print(_table(measured))
    if not checks.ok:
        print(f"WRONG: {dict(list(checks.problems.items())[:3])}")
        return 1
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.profile", description=__doc__)
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--executions", type=int, default=200, help="W2 executions per burst")
    parser.add_argument("--w1-runs", type=int, default=50)
    parser.add_argument("--runners", type=int, default=2)
    parser.add_argument("--w4-rate", type=float, default=100.0, help="W4 executions per second")
    parser.add_argument("--w4-seconds", type=float, default=10.0)
    args = parser.parse_args(argv)
    config = BenchConfig(
        w2_executions=args.executions,
        w1_runs=args.w1_runs,
        runners=args.runners,
        w4_rate=args.w4_rate,
        w4_seconds=args.w4_seconds,
    )
    return asyncio.run(profile(args.workload, args.runs, config))


if __name__ == "__main__":
    raise SystemExit(main())
