"""What the benchmark runs and how much of it: defaults sized for a few minutes on a 2-core box,
every figure changeable on the command line (`python -m bench --help`)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class BenchConfig:
    # The linear chain of W1/W2: text input -> pass-throughs -> graph output.
    chain_nodes: int = 10
    # W1: executions of the chain one after another (after a few unmeasured warm-up runs).
    w1_runs: int = 50
    warmup_runs: int = 3
    # W2: executions of the chain started at once.
    w2_executions: int = 200
    # W2 bursts and Celery task batches, each measured on its own: the median is reported
    # (one burst's rate moved 15% from run to run on the 2-core box, Celery's as much).
    throughput_runs: int = 3
    # W3: the fan-out width, and how many fan-out executions run at once.
    w3_items: int = 100
    w3_alone_runs: int = 3
    w3_concurrent: int = 20
    # W4: executions created per second, and for how long (the figures).
    w4_rate: float = 100.0
    w4_seconds: float = 30.0
    # W5: items of the long iteration, and how long to wait for it before stopping it.
    w5_items: int = 10_000
    w5_timeout_s: float = 120.0
    # Runner processes of the platform, worker processes of Celery.
    runners: int = 2
    celery_workers: int = 2
    # Celery baseline: chain runs (latency) and independent no-op tasks (throughput).
    celery_chain_runs: int = 50
    celery_tasks: int = 2000
    celery_redis_db: int = 14
    # Requests the client keeps in flight at once (its connection pool): 200 simultaneous
    # POSTs would otherwise open more PostgreSQL connections than a shared server allows.
    client_connections: int = 64
    # Longest wait for a batch of executions to finish before they count as not finished.
    wait_timeout_s: float = 180.0
    output: Path = ROOT / "bench" / "results" / "latest.json"
    log_dir: Path = ROOT / "bench" / "results" / "logs"
    skip_celery: bool = False

    def __post_init__(self) -> None:
        if self.chain_nodes < 2:
            raise ValueError("chain_nodes must be at least 2 (an input and an output)")
        if self.throughput_runs < 1:
            raise ValueError("throughput_runs must be at least 1")
        for item in fields(self):
            value = getattr(self, item.name)
            if isinstance(value, int | float) and not isinstance(value, bool) and value < 0:
                raise ValueError(f"{item.name} must not be negative")


QUICK = {
    "w1_runs": 5,
    "warmup_runs": 1,
    "w2_executions": 20,
    "throughput_runs": 1,
    "w3_items": 10,
    "w3_alone_runs": 1,
    "w3_concurrent": 3,
    "w4_rate": 20.0,
    "w4_seconds": 2.0,
    "w5_items": 200,
    "w5_timeout_s": 60.0,
    "celery_chain_runs": 5,
    "celery_tasks": 200,
}


def parse_args(argv: Sequence[str] | None = None) -> BenchConfig:
    """Build the configuration from command-line flags (`--w4-seconds 30`, `--quick`...)."""
    defaults = BenchConfig()
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Agentloom benchmarks, side by side with Celery."
    )
    parser.add_argument(
        "--quick", action="store_true", help="tiny sizes: checks that the harness works"
    )
    for item in fields(BenchConfig):
        flag = "--" + item.name.replace("_", "-")
        default = getattr(defaults, item.name)
        if isinstance(default, bool):
            parser.add_argument(flag, action="store_true", help=f"(default: {default})")
        else:
            kind = type(default)
            parser.add_argument(flag, type=kind, default=None, help=f"(default: {default})")
    args = vars(parser.parse_args(argv))
    values: dict[str, object] = dict(QUICK) if args.pop("quick") else {}
    values.update({name: value for name, value in args.items() if value not in (None, False)})
    return BenchConfig(**values)  # type: ignore[arg-type]
