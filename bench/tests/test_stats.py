from __future__ import annotations

import pytest

from bench.stats import median_run, percentile, rate, slowest_by_window, summary_ms


def test_percentile_interpolates_between_ranks() -> None:
    samples = [4.0, 1.0, 3.0, 2.0]
    assert percentile(samples, 0) == 1.0
    assert percentile(samples, 100) == 4.0
    assert percentile(samples, 50) == pytest.approx(2.5)
    assert percentile(list(range(101)), 99) == pytest.approx(99.0)


def test_percentile_rejects_no_samples_and_bad_ranks() -> None:
    with pytest.raises(ValueError):
        percentile([], 50)
    with pytest.raises(ValueError):
        percentile([1.0], 101)


def test_summary_is_in_milliseconds() -> None:
    summary = summary_ms([0.001, 0.002, 0.003])
    assert summary["n"] == 3
    assert summary["p50_ms"] == pytest.approx(2.0)
    assert summary["min_ms"] == pytest.approx(1.0) and summary["max_ms"] == pytest.approx(3.0)
    assert summary_ms([]) == {"n": 0}


def test_rate_of_an_empty_window_is_zero() -> None:
    assert rate(100, 2.0) == 50.0
    assert rate(100, 0.0) == 0.0
    assert rate(0, 5.0) == 0.0


def test_median_run_is_one_real_run() -> None:
    runs = [{"rate": 5.0, "id": "a"}, {"rate": 1.0, "id": "b"}, {"rate": 3.0, "id": "c"}]
    assert median_run(runs, "rate")["id"] == "c"
    # An even count: the lower middle one (not an average no run had).
    assert median_run([{"rate": 2.0}, {"rate": 4.0}], "rate") == {"rate": 2.0}
    assert median_run([{"rate": 7.0}], "rate") == {"rate": 7.0}
    with pytest.raises(ValueError):
        median_run([], "rate")


def test_the_slowest_request_of_each_window_in_order() -> None:
    timed = [(0.0, 0.010), (0.1, 0.030), (0.3, 0.005), (0.9, 0.2)]
    assert slowest_by_window(timed, 0.25) == [30.0, 5.0, 0.0, 200.0]
    assert slowest_by_window([], 0.25) == []
