"""Small helpers shared by the end-to-end tests."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass
class User:
    user_id: str
    api_key: str


def node(node_id: str, block_id: str, **input_default: Any) -> dict[str, Any]:
    return {"id": node_id, "block_id": block_id, "input_default": input_default, "metadata": {}}


def link(source: str, source_name: str, sink: str, sink_name: str) -> dict[str, Any]:
    return {
        "source_id": source,
        "source_name": source_name,
        "sink_id": sink,
        "sink_name": sink_name,
    }


def graph(name: str, nodes: list[dict[str, Any]], links: list[dict[str, Any]]) -> dict[str, Any]:
    return {"name": name, "description": "", "nodes": nodes, "links": links}
