"""Cron slots of a schedule, evaluated in its IANA time zone (pure: no I/O).

A slot is a wall-clock time in the schedule's zone that matches the cron expression,
turned into an instant (UTC). Daylight saving time, the way the reference product gets
wrong:

- a wall time that does not exist (spring forward, e.g. 02:30 in New York on the day the
  clocks jump from 02:00 to 03:00) fires at the same wall time read with the offset before
  the jump, i.e. one hour later (03:30);
- a wall time that happens twice (fall back) fires once, at its first occurrence.

Expressions are standard 5-field cron (`minute hour day month weekday`) with an optional
6th field for seconds (`minute hour day month weekday second`, croniter's convention).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import CroniterError, croniter

# Slots inspected to find the shortest interval of an expression (the minimum-interval check).
INTERVAL_SAMPLE = 50
# Upper bound on candidates looked at for one answer (an expression that never matches,
# like `0 0 31 2 *`, must not loop forever).
MAX_CANDIDATES = 100_000
MAX_EXPRESSION_LENGTH = 200
# Clock changes within this many hours of a moment are looked for (DST moves by 1 h).
CHANGE_WINDOW_H = 3


class CronError(ValueError):
    """The expression or the time zone is not valid; the message says why."""


def parse_zone(name: str) -> ZoneInfo:
    """The IANA zone `name` (e.g. `Europe/Paris`, `UTC`), or CronError."""
    if not name or len(name) > 64 or name.startswith("/") or ".." in name:
        raise CronError("not an IANA time zone name")
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise CronError(f"unknown time zone {name!r}") from None


def check_expression(expression: str) -> str:
    """The expression normalised (single spaces), or CronError naming the problem."""
    if len(expression) > MAX_EXPRESSION_LENGTH:
        raise CronError("the cron expression is too long")
    fields = expression.split()
    if len(fields) not in (5, 6):
        raise CronError(
            "a cron expression has 5 fields (minute hour day month weekday) "
            "and an optional 6th for seconds"
        )
    normalised = " ".join(fields)
    if not croniter.is_valid(normalised):
        raise CronError("not a valid cron expression")
    if next(_wall_times(normalised, datetime(2000, 1, 1)), None) is None:
        raise CronError("the cron expression never matches")
    return normalised


def _wall_times(expression: str, after: datetime) -> Iterator[datetime]:
    """Naive wall times matching `expression`, strictly after the naive `after`."""
    try:
        iterator = croniter(expression, after)
        for _ in range(MAX_CANDIDATES):
            yield iterator.get_next(datetime)
    except CroniterError:
        # croniter gives up on expressions with no match in its search window.
        return


def _instant(wall: datetime, zone: ZoneInfo) -> datetime:
    """The UTC instant of a naive wall time: its first occurrence (fold=0), which for a
    wall time inside a spring-forward gap is read with the offset from before the gap."""
    return wall.replace(tzinfo=zone, fold=0).astimezone(UTC)


def _margin(zone: ZoneInfo, moment: datetime) -> timedelta:
    window = timedelta(hours=CHANGE_WINDOW_H)
    before = (moment - window).astimezone(zone).utcoffset() or timedelta()
    later = (moment + window).astimezone(zone).utcoffset() or timedelta()
    return abs(later - before) + timedelta(seconds=1)


def next_slot(expression: str, zone: ZoneInfo, after: datetime) -> datetime | None:
    """The first slot strictly after the instant `after` (aware), in UTC; None if none."""
    # Near a clock change, start earlier in wall time by the size of the change: after a
    # fall-back the local clock reads behind the first occurrence of the repeated wall
    # times, and wall times inside a spring-forward gap land after the jump.
    local = after.astimezone(zone).replace(tzinfo=None) - _margin(zone, after)
    for wall in _wall_times(expression, local):
        instant = _instant(wall, zone)
        if instant > after:
            return instant
    return None


def latest_slot(
    expression: str, zone: ZoneInfo, *, not_before: datetime, not_after: datetime
) -> datetime | None:
    """The latest slot in [not_before, not_after], or None when there is none."""
    found: datetime | None = None
    current = next_slot(expression, zone, not_before - timedelta(microseconds=1))
    while current is not None and current <= not_after:
        found = current
        current = next_slot(expression, zone, current)
    return found


def shortest_interval(expression: str, zone: ZoneInfo, start: datetime) -> timedelta | None:
    """The shortest gap between consecutive slots among the next INTERVAL_SAMPLE."""
    shortest: timedelta | None = None
    previous = next_slot(expression, zone, start)
    for _ in range(INTERVAL_SAMPLE):
        if previous is None:
            break
        current = next_slot(expression, zone, previous)
        if current is None:
            break
        gap = current - previous
        shortest = gap if shortest is None else min(shortest, gap)
        previous = current
    return shortest
