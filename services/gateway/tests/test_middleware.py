"""JSON nesting depth, measured without parsing."""

from __future__ import annotations

import json

import pytest

from agentloom_gateway.middleware import json_depth, request_id_from


@pytest.mark.parametrize(
    ("document", "depth"),
    [
        ("1", 0),
        ('"[[["', 0),
        ("[]", 1),
        ('{"a": [1, {"b": []}]}', 4),
        ('{"a": "]]]]", "b": [[["x\\"]]]"]]]}', 4),
        ('["\\\\", [["\\\\"]]]', 3),
    ],
)
def test_json_depth(document: str, depth: int) -> None:
    json.loads(document)
    assert json_depth(document.encode()) == depth


def test_json_depth_of_a_large_flat_document_is_fast_enough() -> None:
    document = json.dumps([{"k": "v" * 10, "n": [1, 2]} for _ in range(20_000)]).encode()
    assert json_depth(document) == 3


def test_request_id_from() -> None:
    assert request_id_from("abc") == "abc"
    assert request_id_from(None) != request_id_from(None)
    assert request_id_from("a" * 129) != "a" * 129
