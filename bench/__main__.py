"""`python -m bench [--quick] [--w4-seconds 10] ...`: the Celery baseline, then the platform
(W1-W5), then one table on stdout and the same as JSON (bench/results/latest.json).

Exit status 1 when any execution or task did not complete with the right outputs; timings
never fail the run."""

from __future__ import annotations

import asyncio
import shutil
import sys
import time
from collections.abc import Sequence
from typing import Any

from bench.checks import Checks
from bench.config import BenchConfig, parse_args
from bench.machine import machine_info
from bench.report import build_rows, render_table, report_json, write_json
from bench.run_agentloom import run_agentloom


def _celery(config: BenchConfig, checks: Checks) -> dict[str, Any] | None:
    if config.skip_celery:
        return None
    # Imported here so that the platform's half runs without Celery installed.
    from bench.celery_baseline import run_celery

    print(f"[bench] Celery baseline: {config.celery_workers} worker processes", flush=True)
    return run_celery(config, checks)


def main(argv: Sequence[str] | None = None) -> int:
    config = parse_args(argv)
    started = time.monotonic()
    shutil.rmtree(config.log_dir, ignore_errors=True)
    checks = Checks()
    machine = asyncio.run(machine_info())
    celery = _celery(config, checks)
    try:
        agentloom = asyncio.run(run_agentloom(config, checks))
    except Exception as error:  # the platform did not start or died: still report the rest
        checks.record("Agentloom", "platform", f"aborted: {type(error).__name__}: {error}"[:600])
        agentloom = {}
    rows = build_rows(agentloom, celery)
    print()
    print(render_table(rows, machine, checks))
    document = report_json(
        rows, machine, config, checks, agentloom, celery, time.monotonic() - started
    )
    write_json(document, config.output)
    print(f"[bench] written to {config.output}")
    if not checks.ok:
        for workload, problems in checks.problems.items():
            for problem in problems[:10]:
                print(f"[bench] WRONG {workload}: {problem}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
