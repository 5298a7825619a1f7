"""One table (workload, Agentloom figure, Celery figure, ratio, target) and the same as JSON.

The ratio is Agentloom's advantage: how many times better its figure is than Celery's
(Celery / Agentloom for latencies, Agentloom / Celery for rates), so above 1 is better
whatever the unit."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench.checks import Checks
from bench.config import BenchConfig


@dataclass(frozen=True)
class Row:
    workload: str
    metric: str
    agentloom: float | str | None
    celery: float | None = None
    better: str = ""  # "lower" or "higher": which way the figures improve
    target: str = ""
    meets: bool | None = None

    @property
    def advantage(self) -> float | None:
        mine, theirs = self.agentloom, self.celery
        if not isinstance(mine, int | float) or theirs is None or mine <= 0 or theirs <= 0:
            return None
        return theirs / mine if self.better == "lower" else mine / theirs


def _get(data: dict[str, Any] | None, *path: str) -> Any:
    for key in path:
        if not isinstance(data, dict):
            return None
        data = data.get(key)
    return data


def _below(value: Any, limit: float) -> bool | None:
    return value < limit if isinstance(value, int | float) else None


def _w1_w3_rows(agl: dict[str, Any], cel: dict[str, Any] | None) -> list[Row]:
    hop = _get(cel, "per_hop_p50_ms")
    per_node = _get(agl, "W1", "per_node_p50_ms")
    tasks = _get(cel, "throughput", "tasks_per_s")
    w2 = _get(agl, "W2", "node_executions_per_s")
    w1_ok = _below(per_node, 2.0)
    if w1_ok is not None and hop is not None:
        w1_ok = w1_ok and per_node < hop
    w2_ok = None if w2 is None else w2 >= 1000 and (tasks is None or w2 >= 2 * tasks)
    return [
        Row("W1 lone chain", "execution latency p50 (ms)", _get(agl, "W1", "latency", "p50_ms"),
            _get(cel, "chain", "p50_ms"), "lower"),
        Row("W1 lone chain", "execution latency p99 (ms)", _get(agl, "W1", "latency", "p99_ms"),
            _get(cel, "chain", "p99_ms"), "lower"),
        Row("W1 lone chain", "per-node overhead p50 (ms)", per_node, hop, "lower",
            "<= 2 ms and < Celery", w1_ok),
        Row("W2 chains at once", "node executions/s", w2, tasks, "higher",
            ">= 1000/s and >= 2x Celery", w2_ok),
        Row("W2 chains at once", "execution latency p99 (ms)",
            _get(agl, "W2", "latency", "p99_ms")),
        Row("W3 fan-out alone", "node executions/s",
            _get(agl, "W3", "alone_node_executions_per_s"), tasks, "higher"),
        Row("W3 fan-outs at once", "node executions/s",
            _get(agl, "W3", "concurrent", "node_executions_per_s"), tasks, "higher"),
    ]  # fmt: skip


def _w4_rows(agl: dict[str, Any]) -> list[Row]:
    wanted, got = _get(agl, "W4", "target_rate_per_s"), _get(agl, "W4", "achieved_rate_per_s")
    # The client sends on schedule only while it keeps up; a lower rate means it fell behind.
    rows = [
        Row("W4 API", "POST execute rate achieved (/s)", got, None, "",
            "-" if wanted is None else f"{wanted:g}/s",
            None if got is None or wanted is None else got >= 0.95 * wanted),
    ]  # fmt: skip
    for call, key in (("POST execute", "post_execute"), ("GET execution", "get_execution")):
        rows.append(Row("W4 API", f"{call} p50 (ms)", _get(agl, "W4", key, "p50_ms")))
        p99 = _get(agl, "W4", key, "p99_ms")
        rows.append(Row("W4 API", f"{call} p99 (ms)", p99, None, "", "< 50 ms", _below(p99, 50)))
    errors = _get(agl, "W4", "errors")
    rows.append(
        Row("W4 API", "errors", errors, None, "", "0", None if errors is None else errors == 0)
    )
    return rows


def _w5_rows(agl: dict[str, Any], cel: dict[str, Any] | None) -> list[Row]:
    idle: dict[str, float] = _get(agl, "rss_idle_mb") or {}
    after: dict[str, float] = _get(agl, "rss_after_w2_mb") or {}
    engine = [name for name in idle if name == "scheduler" or name.startswith("runner-")]
    rows = [
        Row("W5 memory", "engine RSS idle (MB): scheduler+runners vs Celery worker",
            round(sum(idle[name] for name in engine), 1) if engine else None,
            _get(cel, "worker_rss_idle_mb"), "lower"),
        Row("W5 memory", "largest service RSS idle (MB)", max(idle.values(), default=None),
            None, "", "< 150 MB", _below(max(idle.values(), default=None), 150)),
    ]  # fmt: skip
    for name in idle:
        shown = f"{idle[name]:.1f} -> {after.get(name, 0.0):.1f}"
        rows.append(Row("W5 memory", f"RSS {name} idle -> after W2 (MB)", shown))
    w5 = _get(agl, "W5") or {}
    growth = w5.get("growth_peak_mb") or {}
    done: str | None
    if "items" not in w5:
        done = None  # the workload did not run (aborted: see the checks)
    elif w5.get("completed"):
        done = f"completed in {w5.get('seconds')} s"
    else:
        done = (
            f"did not complete in {w5.get('timeout_s')} s "
            f"({w5.get('node_executions_done')} node executions finished)"
        )
    scheduler = growth.get("scheduler")
    rows += [
        Row("W5 memory", f"iteration over {w5.get('items', '-')} items", done, None,
            "", "completes", None if done is None else bool(w5.get("completed"))),
        Row("W5 memory", "scheduler RSS growth, peak (MB)", scheduler, None, "", "< 200 MB",
            None if done is None else bool(w5.get("completed")) and _below(scheduler, 200)),
        Row("W5 memory", "runners RSS growth, peak (MB)",
            round(sum(v for k, v in growth.items() if k != "scheduler"), 1) if growth else None),
    ]  # fmt: skip
    return rows


def build_rows(agentloom: dict[str, Any], celery: dict[str, Any] | None) -> list[Row]:
    return _w1_w3_rows(agentloom, celery) + _w4_rows(agentloom) + _w5_rows(agentloom, celery)


def _cell(value: float | str | None) -> str:
    if value is None:
        return "-"
    if isinstance(value, str):
        return value
    if isinstance(value, int):
        return f"{value:,}"
    if abs(value) < 10:
        return f"{value:.2f}"
    return f"{value:,.1f}" if abs(value) < 1000 else f"{value:,.0f}"


def render_table(rows: list[Row], machine: dict[str, Any], checks: Checks) -> str:
    header = ["workload", "metric", "Agentloom", "Celery", "ratio", "target", "met"]
    lines = [
        [
            row.workload,
            row.metric,
            _cell(row.agentloom),
            _cell(row.celery),
            "-" if row.advantage is None else f"{row.advantage:.2f}x",
            row.target or "-",
            {True: "yes", False: "NO", None: "-"}[row.meets],
        ]
        for row in rows
    ]
    widths = [max(len(line[i]) for line in [header, *lines]) for i in range(len(header))]
    right = {2, 3, 4}

    def fmt(line: list[str]) -> str:
        cells = [
            c.rjust(w) if i in right else c.ljust(w)
            for i, (c, w) in enumerate(zip(line, widths, strict=True))
        ]
        return " | ".join(cells).rstrip()

    rule = "-+-".join("-" * w for w in widths)
    out = [fmt(header), rule, *(fmt(line) for line in lines), rule]
    out.append("ratio = Agentloom's advantage over Celery (>1: Agentloom better)")
    out.append(
        f"machine: {machine.get('cores')} cores ({machine.get('cpu')}), Python "
        f"{machine.get('python')}, RabbitMQ {machine.get('rabbitmq')}, PostgreSQL "
        f"{machine.get('postgresql')}, Redis {machine.get('redis')}, Celery {machine.get('celery')}"
    )
    out.append("checks: " + ", ".join(f"{w} {checks.label(w)}" for w in checks.checked))
    return "\n".join(out)


def _config_json(config: BenchConfig) -> dict[str, Any]:
    return {
        item.name: str(value) if isinstance(value := getattr(config, item.name), Path) else value
        for item in fields(config)
    }


def report_json(
    rows: list[Row],
    machine: dict[str, Any],
    config: BenchConfig,
    checks: Checks,
    agentloom: dict[str, Any],
    celery: dict[str, Any] | None,
    duration_s: float,
) -> dict[str, Any]:
    return {
        "generated_at": datetime.now(UTC).isoformat(),
        "duration_s": round(duration_s, 1),
        "ok": checks.ok,
        "machine": machine,
        "config": _config_json(config),
        "rows": [asdict(row) | {"ratio": row.advantage} for row in rows],
        "checks": checks.as_json(),
        "agentloom": agentloom,
        "celery": celery,
    }


def write_json(document: dict[str, Any], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(document, indent=2, ensure_ascii=False) + "\n")
