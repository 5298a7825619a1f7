"""Cron slots in a time zone: DST correct (the reference product fires at the wrong time)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from agentloom_executor.cron import (
    CronError,
    check_expression,
    latest_slot,
    next_slot,
    parse_zone,
    shortest_interval,
)
from agentloom_executor.schedules import FirePlan, plan_fire
from agentloom_executor.schedules_servicer import check_timing

NEW_YORK = parse_zone("America/New_York")
UTC_ZONE = parse_zone("UTC")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


def test_nine_am_in_new_york_across_spring_forward() -> None:
    # 2024-03-09 09:00 EST is 14:00 UTC; the clocks jump on the 10th, 09:00 EDT is 13:00 UTC.
    assert next_slot("0 9 * * *", NEW_YORK, utc(2024, 3, 9, 14, 0)) == utc(2024, 3, 10, 13, 0)
    assert next_slot("0 9 * * *", NEW_YORK, utc(2024, 3, 10, 13, 0)) == utc(2024, 3, 11, 13, 0)


def test_nine_am_in_new_york_across_fall_back() -> None:
    assert next_slot("0 9 * * *", NEW_YORK, utc(2024, 11, 2, 13, 0)) == utc(2024, 11, 3, 14, 0)
    assert next_slot("0 9 * * *", NEW_YORK, utc(2024, 11, 3, 14, 0)) == utc(2024, 11, 4, 14, 0)


def test_a_wall_time_in_the_spring_gap_fires_an_hour_later() -> None:
    # 02:30 does not exist on 2024-03-10 in New York: it fires at 03:30 EDT (07:30 UTC).
    assert next_slot("30 2 * * *", NEW_YORK, utc(2024, 3, 10, 5, 0)) == utc(2024, 3, 10, 7, 30)
    assert next_slot("30 2 * * *", NEW_YORK, utc(2024, 3, 10, 7, 30)) == utc(2024, 3, 11, 6, 30)


def test_a_repeated_wall_time_fires_once_at_its_first_occurrence() -> None:
    # 01:30 happens twice on 2024-11-03 (EDT, then EST): the slot is the first, 05:30 UTC.
    first = next_slot("30 1 * * *", NEW_YORK, utc(2024, 11, 3, 4, 0))
    assert first == utc(2024, 11, 3, 5, 30)
    assert next_slot("30 1 * * *", NEW_YORK, first) == utc(2024, 11, 4, 6, 30)


def test_every_five_minutes_through_the_fall_back_hour_never_goes_backwards() -> None:
    moment = utc(2024, 11, 3, 4, 50)
    seen = []
    for _ in range(40):
        following = next_slot("*/5 * * * *", NEW_YORK, moment)
        assert following is not None and following > moment
        seen.append(following)
        moment = following
    assert len(set(seen)) == len(seen)


def test_the_sixth_field_is_seconds() -> None:
    assert check_expression("* * * * *  */2") == "* * * * * */2"
    start = utc(2024, 1, 1, 0, 0, 1)
    assert next_slot("* * * * * */2", parse_zone("UTC"), start) == utc(2024, 1, 1, 0, 0, 2)
    assert shortest_interval("* * * * * */2", parse_zone("UTC"), start) == timedelta(seconds=2)
    assert shortest_interval("0,1 * * * *", parse_zone("UTC"), start) == timedelta(minutes=1)


def test_latest_slot_in_a_window() -> None:
    zone = parse_zone("UTC")
    found = latest_slot(
        "*/5 * * * *", zone, not_before=utc(2024, 1, 1, 0, 0), not_after=utc(2024, 1, 1, 0, 14)
    )
    assert found == utc(2024, 1, 1, 0, 10)
    assert (
        latest_slot(
            "0 9 * * *", zone, not_before=utc(2024, 1, 1, 10), not_after=utc(2024, 1, 1, 11)
        )
        is None
    )


@pytest.mark.parametrize(
    "expression",
    ["", "* * * *", "* * * * * * *", "61 * * * *", "not a cron", "0 0 31 2 *", "x" * 300],
)
def test_invalid_expressions_are_rejected(expression: str) -> None:
    with pytest.raises(CronError):
        check_expression(expression)


@pytest.mark.parametrize("name", ["", "Mars/Olympus", "../etc/passwd", "/etc/localtime"])
def test_unknown_time_zones_are_rejected(name: str) -> None:
    with pytest.raises(CronError):
        parse_zone(name)


GRACE = timedelta(minutes=5)


def test_a_slot_due_now_fires_and_the_next_is_the_following_slot() -> None:
    due = utc(2024, 1, 1, 9, 0)
    plan = plan_fire(
        "0 9 * * *", UTC_ZONE, due_at=due, moment=due + timedelta(seconds=1), grace=GRACE
    )
    assert plan == FirePlan(due, utc(2024, 1, 2, 9, 0))


def test_after_an_outage_only_the_latest_missed_slot_within_the_grace_fires() -> None:
    # Every minute, down from 10:00 to 10:30: 10:30 fires once, 10:00-10:29 are skipped.
    plan = plan_fire(
        "* * * * *",
        UTC_ZONE,
        due_at=utc(2024, 1, 1, 10, 0),
        moment=utc(2024, 1, 1, 10, 30, 20),
        grace=GRACE,
    )
    assert plan == FirePlan(utc(2024, 1, 1, 10, 30), utc(2024, 1, 1, 10, 31))


def test_a_missed_slot_older_than_the_grace_is_skipped() -> None:
    plan = plan_fire(
        "0 9 * * *",
        UTC_ZONE,
        due_at=utc(2024, 1, 1, 9, 0),
        moment=utc(2024, 1, 1, 9, 6),
        grace=GRACE,
    )
    assert plan == FirePlan(None, utc(2024, 1, 2, 9, 0))


def test_timing_checks_name_the_field_and_enforce_the_minimum_interval() -> None:
    moment = utc(2024, 1, 1)
    errors: dict[str, str] = {}
    first = check_timing("*/5 * * * *", "Europe/Paris", 60, moment, errors)
    assert errors == {} and first == utc(2024, 1, 1, 0, 5)
    check_timing("* * * * * */10", "UTC", 60, moment, errors)
    assert "minimum interval is 60s" in errors["cron"]
    errors = {}
    check_timing("not cron", "Nowhere/Atlantis", 60, moment, errors)
    assert set(errors) == {"cron", "timezone"}
