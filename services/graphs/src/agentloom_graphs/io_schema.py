"""The JSON Schemas of a graph's inputs (its input blocks) and outputs (its output blocks)."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any

from agentloom_graphs.block_specs import INPUT_KIND, OUTPUT_KIND, BlockSpec, Catalog

if TYPE_CHECKING:
    from agentloom_graphs.domain import Node

# Keys of the block's own `value` schema that describe the pin, not the graph input.
_PIN_ONLY_KEYS = ("title", "description", "default")


def input_schema(nodes: Iterable[Node], catalog: Catalog) -> dict[str, Any]:
    """One property per input block, named by its `name`; required unless it has a default.

    The property's type comes from the block's `value` pin; title, description, default and
    `secret` from the node's input_default.
    """
    properties: dict[str, Any] = {}
    required: list[str] = []
    for node, block, name in _io_nodes(nodes, catalog, INPUT_KIND):
        prop = _value_type(block)
        prop.update(_labels(node.input_default, name))
        default = node.input_default.get("value")
        if default is not None:
            prop["default"] = default
        elif name not in required:
            required.append(name)
        if node.input_default.get("secret") is True:
            prop["secret"] = True
        properties[name] = prop
    return {"type": "object", "properties": properties, "required": required}


def output_schema(nodes: Iterable[Node], catalog: Catalog) -> dict[str, Any]:
    """One property per output block name (several blocks may feed the same output)."""
    properties: dict[str, Any] = {}
    for node, _, name in _io_nodes(nodes, catalog, OUTPUT_KIND):
        properties.setdefault(name, _labels(node.input_default, name))
    return {"type": "object", "properties": properties}


def _io_nodes(
    nodes: Iterable[Node], catalog: Catalog, kind: int
) -> Iterable[tuple[Node, BlockSpec, str]]:
    for node in nodes:
        block = catalog.get(node.block_id)
        if block is None or block.kind != kind:
            continue
        name = block.io_name(node.input_default)
        if isinstance(name, str) and name.strip():
            yield node, block, name


def _labels(input_default: Mapping[str, Any], name: str) -> dict[str, Any]:
    labels: dict[str, Any] = {"title": name}
    for key in ("title", "description"):
        value = input_default.get(key)
        if isinstance(value, str) and value:
            labels[key] = value
    return labels


def _value_type(block: BlockSpec) -> dict[str, Any]:
    """The type of the block's `value` pin; none when it points into the block's own $defs."""
    text = json.dumps(block.input_properties.get("value", {}))
    if '"$ref"' in text:
        return {}
    schema: dict[str, Any] = json.loads(text)  # a copy: the catalog's schema stays untouched
    for key in _PIN_ONLY_KEYS:
        schema.pop(key, None)
    return _without_null(schema)


def _without_null(schema: dict[str, Any]) -> dict[str, Any]:
    """`str | None` pins become plain strings: "no value" is what `required` already says."""
    options = schema.get("anyOf")
    if not isinstance(options, list):
        return schema
    kept = [option for option in options if option != {"type": "null"}]
    rest = {k: v for k, v in schema.items() if k != "anyOf"}
    if len(kept) == 1 and isinstance(kept[0], dict):
        return {**rest, **kept[0]}
    return {**rest, "anyOf": kept} if kept else rest
