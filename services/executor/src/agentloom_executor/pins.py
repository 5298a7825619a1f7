"""Pin paths: select from an output, or assemble into an input, with chainable suffixes
(the reference product's dynamic fields): `x_$_0` list index, `x_#_key` dict key,
`x_@_attr` attribute. `items_$_0_#_name` is the `name` key of the first item of `items`.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

LIST, DICT, ATTR = "_$_", "_#_", "_@_"
_SPLIT = re.compile(r"(_\$_|_#_|_@_)")

Step = tuple[str, str]


class Missing(Exception):
    """The path selects nothing in this value (e.g. an index past the end)."""


def parse(name: str) -> tuple[str, list[Step]]:
    """`x_$_0_#_k` -> ("x", [("_$_", "0"), ("_#_", "k")])."""
    parts = _SPLIT.split(name)
    base, rest = parts[0], parts[1:]
    return base, [(rest[i], rest[i + 1]) for i in range(0, len(rest), 2)]


def base_of(name: str) -> str:
    return parse(name)[0]


def select(value: Any, steps: list[Step]) -> Any:
    """Follow a source-side path into an output value."""
    for kind, key in steps:
        try:
            if kind == LIST:
                value = value[int(key)]
            elif kind == DICT:
                value = value[key]
            elif isinstance(value, Mapping):
                value = value[key]
            else:
                value = getattr(value, key)
        except (IndexError, KeyError, TypeError, ValueError, AttributeError):
            raise Missing(key) from None
    return value


def assemble(inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Merge sink-side path pins into their base pin: {"v_#_a": 1, "v_#_b": 2} -> {"v":
    {"a": 1, "b": 2}}, on top of any value the base pin already has (e.g. a default)."""
    merged: dict[str, Any] = {}
    nested: list[tuple[str, list[Step], Any]] = []
    for name, value in inputs.items():
        base, steps = parse(name)
        if steps:
            nested.append((base, steps, value))
        else:
            merged[name] = value
    for base, steps, value in sorted(nested, key=lambda item: _order(item[1])):
        merged[base] = _put(merged.get(base), steps, value)
    return merged


def _order(steps: list[Step]) -> list[tuple[int, str]]:
    return [(int(key) if kind == LIST and key.isdigit() else 0, key) for kind, key in steps]


def _put(container: Any, steps: list[Step], value: Any) -> Any:
    if not steps:
        return value
    (kind, key), rest = steps[0], steps[1:]
    if kind == LIST:
        items = list(container) if isinstance(container, list) else []
        index = int(key) if key.isdigit() else len(items)
        while len(items) <= index:
            items.append(None)
        items[index] = _put(items[index], rest, value)
        return items
    mapping = dict(container) if isinstance(container, Mapping) else {}
    mapping[key] = _put(mapping.get(key), rest, value)
    return mapping
