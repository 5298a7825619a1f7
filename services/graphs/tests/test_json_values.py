"""Strict parsing of user JSON: only values PostgreSQL can store get through."""

from __future__ import annotations

import pytest

from agentloom_graphs.json_values import MAX_DEPTH, JsonValueError, check_storable, parse_object


def test_blank_text_is_the_empty_object() -> None:
    assert parse_object("  ", max_bytes=10) == {}


def test_big_integers_and_unicode_survive() -> None:
    value = parse_object(
        '{"n": 12345678901234567890, "s": "h\\u00e9 \\ud83d\\ude00"}', max_bytes=99
    )

    assert value == {"n": 12345678901234567890, "s": "hé 😀"}


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ('{"a": Infinity}', "Infinity is not a JSON number"),
        ('{"a": -Infinity}', "is not a JSON number"),
        ('{"a\\u0000": 1}', "NUL"),
        ("1", "must be a JSON object"),
        ('{"a": "' + "x" * 100 + '"}', "at most 0 KB"),
    ],
)
def test_values_postgresql_would_refuse_are_errors(text: str, fragment: str) -> None:
    with pytest.raises(JsonValueError, match=fragment):
        parse_object(text, max_bytes=100)


def test_nesting_is_bounded_even_past_the_parsers_own_recursion_limit() -> None:
    at_limit: object = {}
    for _ in range(MAX_DEPTH - 1):
        at_limit = [at_limit]
    check_storable(at_limit)

    with pytest.raises(JsonValueError, match="nest deeper"):
        check_storable([at_limit])
    with pytest.raises(JsonValueError, match="nest deeper"):
        parse_object('{"a": ' + "[" * 100_000 + "]" * 100_000 + "}", max_bytes=10**6)
