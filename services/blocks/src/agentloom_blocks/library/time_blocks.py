"""Dates and times, with IANA time zones (zoneinfo)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, Field

from agentloom_blocks.sdk import Block, BlockContext, BlockError, BlockExample


def zone(name: str) -> tzinfo:
    """The IANA time zone `name` (e.g. Europe/Paris); UTC for "UTC"."""
    if name.upper() == "UTC":
        return UTC
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise BlockError(
            f"unknown time zone {name!r} (use an IANA name such as Europe/Paris)"
        ) from None


def parse(text: str, fmt: str, default_zone: str) -> datetime:
    """A timezone-aware datetime from ISO 8601 (or `fmt`); naive times are in `default_zone`."""
    try:
        value = (
            datetime.strptime(text.strip(), fmt) if fmt else datetime.fromisoformat(text.strip())
        )
    except ValueError as exc:
        expected = f"the format {fmt!r}" if fmt else "ISO 8601"
        raise BlockError(f"cannot read {text!r} as a date ({expected}): {exc}") from None
    return value if value.tzinfo is not None else value.replace(tzinfo=zone(default_zone))


def render(value: datetime, fmt: str) -> str:
    return value.strftime(fmt) if fmt else value.isoformat()


def _timezone_field(description: str) -> Any:
    return Field(default="UTC", title="Time zone", description=description)


def _format_field(description: str) -> Any:
    return Field(default="", title="Format", description=description)


class CurrentTimeBlock(Block):
    id = "current_time_block"
    name = "Current time"
    description = "Yields the current date and time in a time zone, and the Unix timestamp."
    categories = ("time",)
    cost_per_run = 0

    class Input(BaseModel):
        timezone: str = _timezone_field("An IANA time zone, e.g. Europe/Paris.")
        format: str = _format_field("A strftime format, e.g. %Y-%m-%d (ISO 8601 when empty).")
        trigger: Any = Field(
            default=None, title="Trigger", description="Anything; wire it to run on an event."
        )

    class Output(BaseModel):
        time: str = Field(title="Time", description="The current time, formatted.")
        timestamp: float = Field(title="Timestamp", description="Seconds since 1970 (UTC).")

    examples = (
        BlockExample(
            input={"timezone": "Mars/Olympus"},
            outputs=[
                (
                    "error",
                    "unknown time zone 'Mars/Olympus' (use an IANA name such as Europe/Paris)",
                )
            ],
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        now = datetime.now(zone(input.timezone))
        yield "time", render(now, input.format)
        yield "timestamp", now.timestamp()


class ParseDateBlock(Block):
    id = "parse_date_block"
    name = "Parse date"
    description = (
        "Reads a date/time from text (ISO 8601, or a strptime `format`) and yields it as ISO "
        "8601 with its offset, and as a Unix timestamp. Times without an offset are taken in "
        "`timezone`."
    )
    categories = ("time",)
    cost_per_run = 0

    class Input(BaseModel):
        text: str = Field(title="Text", description="The date/time to read.")
        format: str = _format_field("A strptime format, e.g. %d/%m/%Y %H:%M (ISO 8601 when empty).")
        timezone: str = _timezone_field("The time zone of times written without an offset.")

    class Output(BaseModel):
        datetime: str = Field(title="Datetime", description="ISO 8601 with offset.")
        timestamp: float = Field(title="Timestamp", description="Seconds since 1970 (UTC).")

    examples = (
        BlockExample(
            input={
                "text": "06/01/2025 09:30",
                "format": "%d/%m/%Y %H:%M",
                "timezone": "Europe/Paris",
            },
            outputs=[("datetime", "2025-01-06T09:30:00+01:00"), ("timestamp", 1736152200.0)],
        ),
        BlockExample(
            input={"text": "yesterday"},
            outputs=[
                (
                    "error",
                    "cannot read 'yesterday' as a date (ISO 8601): Invalid isoformat string: "
                    "'yesterday'",
                )
            ],
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        value = parse(input.text, input.format, input.timezone)
        yield "datetime", value.isoformat()
        yield "timestamp", value.timestamp()


class FormatDateBlock(Block):
    id = "format_date_block"
    name = "Format date"
    description = "Converts an ISO 8601 date/time to a time zone and writes it with a format."
    categories = ("time", "text")
    cost_per_run = 0

    class Input(BaseModel):
        datetime: str = Field(title="Datetime", description="An ISO 8601 date/time.")
        format: str = _format_field("A strftime format, e.g. %A %d %B %Y (ISO 8601 when empty).")
        timezone: str = _timezone_field("The time zone to show the time in.")

    class Output(BaseModel):
        text: str = Field(title="Text", description="The formatted date/time.")

    examples = (
        BlockExample(
            input={
                "datetime": "2025-01-06T09:30:00Z",
                "format": "%Y-%m-%d %H:%M %Z",
                "timezone": "America/New_York",
            },
            outputs=[("text", "2025-01-06 04:30 EST")],
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        value = parse(input.datetime, "", "UTC").astimezone(zone(input.timezone))
        yield "text", render(value, input.format)


class DateArithmeticBlock(Block):
    id = "date_arithmetic_block"
    name = "Add to date"
    description = (
        "Adds (or, with negative numbers, subtracts) days, hours, minutes and seconds to an "
        "ISO 8601 date/time. Days are calendar days in `timezone` (a day across a daylight-"
        "saving change is 23 or 25 hours); the result is shown in that time zone."
    )
    categories = ("time",)
    cost_per_run = 0

    class Input(BaseModel):
        datetime: str = Field(title="Datetime", description="An ISO 8601 date/time.")
        days: int = Field(default=0, title="Days", description="Calendar days to add.")
        hours: float = Field(default=0, title="Hours", description="Hours to add.")
        minutes: float = Field(default=0, title="Minutes", description="Minutes to add.")
        seconds: float = Field(default=0, title="Seconds", description="Seconds to add.")
        timezone: str = _timezone_field("The time zone for calendar days and the result.")

    class Output(BaseModel):
        datetime: str = Field(title="Datetime", description="The result, ISO 8601.")

    examples = (
        BlockExample(
            input={"datetime": "2025-03-29T12:00:00+01:00", "days": 1, "timezone": "Europe/Paris"},
            outputs=[("datetime", "2025-03-30T12:00:00+02:00")],
            description="A calendar day across the switch to summer time.",
        ),
        BlockExample(
            input={"datetime": "2025-01-01T00:00:00Z", "hours": -1.5},
            outputs=[("datetime", "2024-12-31T22:30:00+00:00")],
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        tz = zone(input.timezone)
        local = parse(input.datetime, "", input.timezone).astimezone(tz)
        try:
            # Wall-clock days in the zone, then elapsed time; re-resolve the offset after.
            shifted = (local.replace(tzinfo=None) + timedelta(days=input.days)).replace(tzinfo=tz)
            result = (
                shifted.astimezone(UTC)
                + timedelta(hours=input.hours, minutes=input.minutes, seconds=input.seconds)
            ).astimezone(tz)
        except OverflowError:
            raise BlockError("the result is out of the range of dates") from None
        yield "datetime", result.isoformat()


class DateDifferenceBlock(Block):
    id = "date_difference_block"
    name = "Time between dates"
    description = "Yields the time from `start` to `end` (ISO 8601) in seconds and in days."
    categories = ("time",)
    cost_per_run = 0

    class Input(BaseModel):
        start: str = Field(title="Start", description="An ISO 8601 date/time.")
        end: str = Field(title="End", description="An ISO 8601 date/time.")
        timezone: str = _timezone_field("The time zone of times written without an offset.")

    class Output(BaseModel):
        seconds: float = Field(title="Seconds", description="end - start, in seconds.")
        days: float = Field(title="Days", description="end - start, in days of 24 hours.")

    examples = (
        BlockExample(
            input={"start": "2025-01-01T00:00:00Z", "end": "2025-01-02T12:00:00+00:00"},
            outputs=[("seconds", 129600.0), ("days", 1.5)],
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        delta = parse(input.end, "", input.timezone) - parse(input.start, "", input.timezone)
        yield "seconds", delta.total_seconds()
        yield "days", delta.total_seconds() / 86400
