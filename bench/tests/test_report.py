from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.checks import Checks
from bench.config import BenchConfig, parse_args
from bench.report import Row, build_rows, render_table, report_json, write_json

AGENTLOOM = {
    "rss_idle_mb": {"gateway": 90.0, "scheduler": 80.0, "runner-1": 70.0, "runner-2": 70.0},
    "rss_after_w2_mb": {"gateway": 95.0, "scheduler": 85.0, "runner-1": 72.0, "runner-2": 71.0},
    "W1": {"latency": {"p50_ms": 40.0, "p99_ms": 60.0}, "per_node_p50_ms": 4.0},
    "W2": {"node_executions_per_s": 500.0, "latency": {"p99_ms": 900.0}},
    "W3": {"alone_node_executions_per_s": 300.0, "concurrent": {"node_executions_per_s": 450.0}},
    "W4": {
        "post_execute": {"p50_ms": 10.0, "p99_ms": 40.0},
        "get_execution": {"p50_ms": 5.0, "p99_ms": 70.0},
        "errors": 0,
    },
    "W5": {"items": 10_000, "completed": False, "timeout_s": 150.0, "node_executions_done": 42},
}
CELERY = {
    "chain": {"p50_ms": 30.0, "p99_ms": 50.0},
    "per_hop_p50_ms": 3.0,
    "throughput": {"tasks_per_s": 400.0},
    "worker_rss_idle_mb": 120.0,
}


def _row(rows: list[Row], metric: str, workload: str = "") -> Row:
    return next(r for r in rows if r.metric == metric and r.workload.startswith(workload))


def test_ratio_is_agentlooms_advantage_in_either_direction() -> None:
    rows = build_rows(AGENTLOOM, CELERY)
    per_node = _row(rows, "per-node overhead p50 (ms)")
    assert per_node.advantage == pytest.approx(0.75)  # 3 ms / 4 ms: Celery is faster
    assert per_node.meets is False
    w2 = _row(rows, "node executions/s", "W2")
    assert w2.advantage == pytest.approx(1.25) and w2.meets is False


def test_targets_are_judged_per_row() -> None:
    rows = build_rows(AGENTLOOM, CELERY)
    assert _row(rows, "POST execute p99 (ms)").meets is True
    assert _row(rows, "GET execution p99 (ms)").meets is False
    assert _row(rows, "errors").meets is True
    assert _row(rows, "largest service RSS idle (MB)").meets is True
    w5 = _row(rows, "iteration over 10000 items")
    assert w5.meets is False and "did not complete in 150.0 s" in str(w5.agentloom)


def test_rows_without_celery_have_no_ratio() -> None:
    rows = build_rows(AGENTLOOM, None)
    assert all(row.advantage is None for row in rows)


def test_table_and_json_carry_the_same_rows(tmp_path: Path) -> None:
    checks = Checks()
    checks.record("W1", "e1", None)
    checks.record("W1", "e2", "status FAILED")
    rows = build_rows(AGENTLOOM, CELERY)
    machine = {"cores": 2, "python": "3.11.7", "rabbitmq": "3.10.8", "postgresql": "15.2"}
    table = render_table(rows, machine, checks)
    assert "2 cores" in table and "RabbitMQ 3.10.8" in table and "W1 1/2 ok" in table
    assert all(row.metric in table for row in rows)
    document = report_json(rows, machine, BenchConfig(), checks, AGENTLOOM, CELERY, 12.0)
    write_json(document, tmp_path / "out" / "latest.json")
    loaded = json.loads((tmp_path / "out" / "latest.json").read_text())
    assert loaded["ok"] is False
    assert loaded["checks"]["W1"] == {"checked": 2, "failed": 1, "problems": ["e2: status FAILED"]}
    assert [row["metric"] for row in loaded["rows"]] == [row.metric for row in rows]
    assert loaded["rows"][2]["ratio"] == pytest.approx(0.75)


def test_command_line_overrides_defaults() -> None:
    config = parse_args(["--w4-seconds", "12", "--w1-runs", "7", "--skip-celery"])
    assert config.w4_seconds == 12.0 and config.w1_runs == 7 and config.skip_celery
    quick = parse_args(["--quick", "--w2-executions", "5"])
    assert quick.w2_executions == 5 and quick.w1_runs < BenchConfig().w1_runs
    with pytest.raises(ValueError):
        BenchConfig(chain_nodes=1)


def test_an_aborted_platform_still_gives_a_table() -> None:
    checks = Checks()
    checks.record("Agentloom", "platform", "aborted: RuntimeError: billing exited")
    rows = build_rows({}, CELERY)
    assert all(row.agentloom is None and row.meets is None for row in rows)
    table = render_table(rows, {"cores": 2}, checks)
    assert "Agentloom 0/1 ok" in table and "3.00" in table  # Celery's per-hop figure is kept
