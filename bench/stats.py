"""Summaries of timing samples: percentiles by linear interpolation, as numpy's default."""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any


def percentile(samples: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of the samples, interpolating between closest ranks."""
    if not samples:
        raise ValueError("no samples")
    if not 0 <= q <= 100:
        raise ValueError(f"percentile {q} is outside 0..100")
    ordered = sorted(samples)
    rank = (len(ordered) - 1) * q / 100
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def summary_ms(samples_s: Sequence[float]) -> dict[str, float | int]:
    """p50/p99/mean/min/max in milliseconds of samples given in seconds (empty: only n=0)."""
    if not samples_s:
        return {"n": 0}
    ms = [value * 1000 for value in samples_s]
    return {
        "n": len(ms),
        "p50_ms": round(percentile(ms, 50), 3),
        "p99_ms": round(percentile(ms, 99), 3),
        "mean_ms": round(sum(ms) / len(ms), 3),
        "min_ms": round(min(ms), 3),
        "max_ms": round(max(ms), 3),
    }


def rate(count: int, seconds: float) -> float:
    """Events per second, 0 for an empty or zero-length window."""
    return count / seconds if seconds > 0 and count > 0 else 0.0


def median_run(runs: Sequence[dict[str, Any]], key: str) -> dict[str, Any]:
    """The run whose `key` is the median of all runs' (the lower middle one of an even
    count), so every figure reported with it comes from one real run."""
    if not runs:
        raise ValueError("no runs")
    ordered = sorted(runs, key=lambda run: float(run[key]))
    return ordered[(len(ordered) - 1) // 2]


def slowest_by_window(timed: list[tuple[float, float]], window_s: float) -> list[float]:
    """The slowest latency (ms) of the requests due in each window of `window_s` seconds,
    in order: a stall shows as a run of high values, a slow steady state as all of them."""
    if not timed:
        return []
    slowest = [0.0] * (int(max(at for at, _ in timed) / window_s) + 1)
    for at, took in timed:
        index = int(at / window_s)
        slowest[index] = max(slowest[index], round(took * 1000, 1))
    return slowest
