"""Strict parsing of the user's JSON values (input defaults, metadata).

Python's `json` accepts things PostgreSQL refuses to store (NaN, Infinity, NUL characters,
lone surrogates) and nesting deep enough to exhaust the stack; a value that parses here is
one the database takes, so a bad value is a validation error and never an internal one.
"""

from __future__ import annotations

import json
from typing import Any

MAX_DEPTH = 64


class JsonValueError(ValueError):
    """Why a value was refused, phrased to follow the field's name ("... must be ...")."""


def parse_object(text: str, *, max_bytes: int) -> dict[str, Any]:
    """Parse `text` as a JSON object; blank text is the empty object."""
    if not text.strip():
        return {}
    if len(text.encode("utf-8", "surrogatepass")) > max_bytes:
        raise JsonValueError(f"must be at most {max_bytes // 1024} KB of JSON")
    try:
        value = json.loads(text, parse_constant=_reject_constant)
    except RecursionError:
        raise JsonValueError(f"must not nest deeper than {MAX_DEPTH} levels") from None
    except ValueError as error:
        raise JsonValueError(f"must be valid JSON ({error})") from None
    if not isinstance(value, dict):
        raise JsonValueError("must be a JSON object")
    check_storable(value)
    return value


def check_storable(value: Any) -> None:
    """Raise `JsonValueError` if `value` nests too deeply or holds a string PostgreSQL refuses."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            _check_depth(depth)
            for key, child in item.items():
                check_text(key)
                stack.append((child, depth + 1))
        elif isinstance(item, list):
            _check_depth(depth)
            stack.extend((child, depth + 1) for child in item)
        elif isinstance(item, str):
            check_text(item)


def check_text(text: str) -> None:
    """Raise `JsonValueError` for a string PostgreSQL cannot store (NUL, lone surrogate)."""
    if "\x00" in text:
        raise JsonValueError("must not contain NUL characters")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        raise JsonValueError("must not contain unpaired surrogate characters") from None


def _check_depth(depth: int) -> None:
    if depth > MAX_DEPTH:
        raise JsonValueError(f"must not nest deeper than {MAX_DEPTH} levels")


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")
