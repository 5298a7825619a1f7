from __future__ import annotations

import pytest

from agentloom_executor.pins import Missing, assemble, base_of, parse, select


def test_parse_chains_steps() -> None:
    assert parse("items_$_0_#_name") == ("items", [("_$_", "0"), ("_#_", "name")])
    assert parse("plain") == ("plain", [])
    assert base_of("values_#_k") == "values"


def test_select_follows_list_dict_and_attribute_steps() -> None:
    value = {"rows": [{"name": "a"}, {"name": "b"}]}
    assert select(value, parse("x_#_rows_$_1_#_name")[1]) == "b"
    assert select({"k": 1}, [("_@_", "k")]) == 1
    with pytest.raises(Missing):
        select([1], [("_$_", "3")])
    with pytest.raises(Missing):
        select({"a": 1}, [("_#_", "b")])


def test_assemble_builds_dicts_and_lists_over_defaults() -> None:
    merged = assemble(
        {"values_#_a": 1, "values_#_b": 2, "items_$_1": "y", "items_$_0": "x", "t": 3}
    )
    assert merged == {"values": {"a": 1, "b": 2}, "items": ["x", "y"], "t": 3}
    assert assemble({"values": {"keep": 0}, "values_#_a": 1}) == {"values": {"keep": 0, "a": 1}}
