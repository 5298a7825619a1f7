"""Graph validation rules, against the real block library and a few hand-made blocks."""

from __future__ import annotations

import json
from typing import Any

import pytest

from agentloom.blocks.v1 import blocks_pb2
from agentloom_common.errors import InvalidArgument
from agentloom_graphs.block_specs import BlockSpec, Catalog
from agentloom_graphs.domain import (
    MAX_LINKS,
    MAX_NODES,
    GraphDraft,
    LinkDraft,
    NodeDraft,
    require_user_id,
    validate_graph,
)
from agentloom_graphs.errors import GraphInvalid


def node(node_id: str, block_id: str, **input_default: Any) -> NodeDraft:
    return NodeDraft(node_id, block_id, json.dumps(input_default), '{"position": [0, 0]}')


def link(source: str, source_name: str, sink: str, sink_name: str, link_id: str = "") -> LinkDraft:
    return LinkDraft(source, source_name, sink, sink_name, id=link_id)


def problems(draft: GraphDraft, catalog: Catalog) -> dict[str, dict[str, str]]:
    with pytest.raises(GraphInvalid) as raised:
        validate_graph(draft, catalog)
    return raised.value.node_errors


def hand_made(block_id: str, kind: int, inputs: dict[str, Any], required: list[str]) -> BlockSpec:
    schema = {"type": "object", "properties": inputs, "required": required}
    return BlockSpec.from_proto(
        blocks_pb2.Block(
            id=block_id,
            name=block_id,
            kind=kind,  # type: ignore[arg-type]
            input_schema_json=json.dumps(schema),
            output_schema_json=json.dumps({"properties": {"out": {}}}),
        )
    )


TEMPLATE_GRAPH = GraphDraft(
    name="Greeter",
    description="Says hello",
    nodes=[
        node("input_node", "text_input_block", name="who", title="Who"),
        node("template", "text_template_block", template="Hello {{ who }}"),
        node("output_node", "output_block", name="greeting"),
    ],
    links=[
        link("input_node", "text", "template", "who", link_id="l1"),
        link("template", "text", "output_node", "value"),
    ],
)


def test_valid_graph_keeps_nodes_and_links_and_generates_missing_link_ids(
    catalog: Catalog,
) -> None:
    graph = validate_graph(TEMPLATE_GRAPH, catalog, new_link_id=lambda: "generated")

    assert [n.id for n in graph.nodes] == ["input_node", "template", "output_node"]
    assert graph.nodes[1].input_default == {"template": "Hello {{ who }}"}
    assert graph.nodes[0].metadata == {"position": [0, 0]}
    assert [(lk.id, lk.source_id, lk.sink_name) for lk in graph.links] == [
        ("l1", "input_node", "who"),
        ("generated", "template", "value"),
    ]
    assert list(graph.input_schema["properties"]) == ["who"]
    assert list(graph.output_schema["properties"]) == ["greeting"]


def test_empty_graph_is_allowed(catalog: Catalog) -> None:
    graph = validate_graph(GraphDraft(name="Empty"), catalog)

    assert graph.nodes == () and graph.links == ()
    assert graph.input_schema == {"type": "object", "properties": {}, "required": []}


@pytest.mark.parametrize(
    ("name", "description", "field", "fragment"),
    [
        ("", "", "name", "needs a name"),
        ("   ", "", "name", "needs a name"),
        ("x" * 201, "", "name", "at most 200"),
        ("ok", "d" * 5001, "description", "at most 5000"),
        ("bad\x00name", "", "name", "NUL"),
    ],
)
def test_graph_name_and_description_limits(
    catalog: Catalog, name: str, description: str, field: str, fragment: str
) -> None:
    errors = problems(GraphDraft(name=name, description=description), catalog)

    assert fragment in errors[""][field]


def test_node_ids_must_be_present_unique_and_short(catalog: Catalog) -> None:
    draft = GraphDraft(
        name="g",
        nodes=[
            node("", "pass_through_block", value=1),
            node("a", "pass_through_block", value=1),
            node("a", "pass_through_block", value=2),
            node("n" * 101, "pass_through_block", value=1),
        ],
    )

    errors = problems(draft, catalog)

    assert "needs an id" in errors[""]["nodes[0].id"]
    assert "more than one node" in errors["a"]["id"]
    assert "at most 100" in errors[""]["nodes[3].id"]


def test_unknown_or_missing_block_is_reported_on_the_node(catalog: Catalog) -> None:
    draft = GraphDraft(name="g", nodes=[node("a", "no_such_block"), node("b", "")])

    errors = problems(draft, catalog)

    assert errors["a"] == {"block_id": "unknown block 'no_such_block'"}
    assert errors["b"] == {"block_id": "a node needs a block"}


@pytest.mark.parametrize(
    ("input_default_json", "fragment"),
    [
        ("[1, 2]", "must be a JSON object"),
        ("{not json", "must be valid JSON"),
        ('{"value": NaN}', "must be valid JSON"),
        ('{"value": "a\\u0000b"}', "NUL"),
        ('{"value": "\\ud800"}', "surrogate"),
        ('{"value": ' + "[" * 100 + "]" * 100 + "}", "nest deeper"),
        (json.dumps({"value": "x" * (256 * 1024)}), "at most 256 KB"),
    ],
)
def test_input_default_must_be_a_storable_json_object(
    catalog: Catalog, input_default_json: str, fragment: str
) -> None:
    draft = GraphDraft(name="g", nodes=[NodeDraft("a", "pass_through_block", input_default_json)])

    errors = problems(draft, catalog)

    assert fragment in errors["a"]["input_default"]


def test_metadata_must_be_a_json_object(catalog: Catalog) -> None:
    draft = GraphDraft(name="g", nodes=[NodeDraft("a", "pass_through_block", '{"value": 1}', "3")])

    assert "must be a JSON object" in problems(draft, catalog)["a"]["metadata"]


def test_input_default_keys_must_be_input_pins_unless_the_block_takes_extras(
    catalog: Catalog,
) -> None:
    draft = GraphDraft(
        name="g",
        nodes=[
            node("strict", "pass_through_block", value=1, colour="red", value_extra=2),
            node("loose", "text_template_block", template="{{ colour }}", colour="red"),
        ],
    )

    errors = problems(draft, catalog)

    assert set(errors) == {"strict"}
    assert "no input 'colour'" in errors["strict"]["colour"]
    assert "no input 'value_extra'" in errors["strict"]["value_extra"]


def test_link_ends_must_exist_and_name_real_pins(catalog: Catalog) -> None:
    draft = GraphDraft(
        name="g",
        nodes=[node("a", "pass_through_block", value=1), node("b", "pass_through_block")],
        links=[
            link("ghost", "value", "b", "value"),
            link("a", "value", "ghost", "value"),
            link("a", "nope", "b", "value"),
            link("a", "value", "b", "nope"),
            link("a", "", "b", "value"),
        ],
    )

    errors = problems(draft, catalog)

    assert errors[""]["links[0].source_id"] == "node 'ghost' does not exist"
    assert errors[""]["links[1].sink_id"] == "node 'ghost' does not exist"
    block_name = catalog["pass_through_block"].name
    assert errors["a"]["nope"] == f"block {block_name!r} has no output 'nope'"
    assert errors["b"]["nope"] == f"block {block_name!r} has no input 'nope'"
    assert "output pin's name" in errors["a"]["links[4].source_name"]


def test_error_pin_extra_sink_pins_and_pin_paths_are_checked_on_their_base_name(
    catalog: Catalog,
) -> None:
    draft = GraphDraft(
        name="g",
        nodes=[
            node("a", "step_through_items_block", items=[[1, 2]]),
            node("b", "text_template_block", template="{{ anything }}"),
            node("c", "count_items_block"),
            node("d", "pass_through_block"),
        ],
        links=[
            link("a", "error", "b", "anything"),
            link("a", "item_$_0", "c", "items"),
            link("a", "item", "d", "value_#_key"),
            link("a", "bogus_@_attr", "d", "value"),
        ],
    )

    errors = problems(draft, catalog)

    block_name = catalog["step_through_items_block"].name
    assert errors == {"a": {"bogus_@_attr": f"block {block_name!r} has no output 'bogus'"}}


def test_the_same_link_twice_and_reused_link_ids_are_refused(catalog: Catalog) -> None:
    draft = GraphDraft(
        name="g",
        nodes=[node("a", "pass_through_block", value=1), node("b", "pass_through_block")],
        links=[
            link("a", "value", "b", "value", link_id="x"),
            link("a", "value", "b", "value", link_id="x"),
        ],
    )

    errors = problems(draft, catalog)

    assert "more than once" in errors[""]["links[1]"]
    assert "used more than once" in errors[""]["links[1].id"]


def test_required_inputs_need_a_default_or_a_link(catalog: Catalog) -> None:
    draft = GraphDraft(
        name="g",
        nodes=[
            node("from_default", "pass_through_block", value="v"),
            node("from_link", "pass_through_block"),
            node("missing", "pass_through_block"),
            node("null_default", "pass_through_block", value=None),
        ],
        links=[link("from_default", "value", "from_link", "value_$_0")],
    )

    errors = problems(draft, catalog)

    assert set(errors) == {"missing", "null_default"}
    assert "required input" in errors["missing"]["value"]


def test_an_input_blocks_value_comes_from_the_execution(catalog: Catalog) -> None:
    strict_input = hand_made(
        "strict_input",
        blocks_pb2.BLOCK_KIND_INPUT,
        {"name": {"type": "string"}, "value": {"type": "string"}},
        ["name", "value"],
    )
    extended = {**catalog, strict_input.id: strict_input}
    draft = GraphDraft(name="g", nodes=[node("named", "strict_input", name="q")])

    validate_graph(draft, extended)
    errors = problems(GraphDraft(name="g", nodes=[node("unnamed", "strict_input")]), extended)

    assert list(errors["unnamed"]) == ["name"]


def test_graph_input_names_must_be_unique_and_strings(catalog: Catalog) -> None:
    draft = GraphDraft(
        name="g",
        nodes=[
            node("first", "text_input_block"),
            node("second", "number_input_block", name="text"),
            node("third", "text_input_block", name=5),
            node("out1", "output_block", name="same", value=1),
            node("out2", "output_block", name="same", value=2),
        ],
    )

    errors = problems(draft, catalog)

    assert errors["first"]["name"] == "graph input 'text' is also used by 'second'"
    assert errors["second"]["name"] == "graph input 'text' is also used by 'first'"
    assert errors["third"]["name"] == "must be a non-empty string"
    assert "out1" not in errors and "out2" not in errors


def test_size_limits_are_checked_before_anything_else(catalog: Catalog) -> None:
    nodes = [node(f"n{i}", "no_such_block") for i in range(MAX_NODES + 1)]
    links = [link("x", "y", "z", "w")] * (MAX_LINKS + 1)

    errors = problems(GraphDraft(name="g", nodes=nodes, links=links), catalog)

    assert errors == {
        "": {
            "nodes": f"a graph has at most {MAX_NODES} nodes",
            "links": f"a graph has at most {MAX_LINKS} links",
        }
    }


def test_every_problem_is_reported_at_once_in_a_readable_message(catalog: Catalog) -> None:
    draft = GraphDraft(
        name="",
        nodes=[node("a", "no_such_block"), node("b", "pass_through_block")],
        links=[link("b", "value", "c", "value")],
    )

    with pytest.raises(GraphInvalid) as raised:
        validate_graph(draft, catalog)

    error = raised.value
    assert error.node_errors == {
        "": {"name": "a graph needs a name", "links[0].sink_id": "node 'c' does not exist"},
        "a": {"block_id": "unknown block 'no_such_block'"},
        "b": {"value": "required input: give it a default value or link a pin to it"},
    }
    assert error.reason == "GRAPH_INVALID"
    assert json.loads(error.metadata["node_errors"]) == error.node_errors
    assert error.message.startswith("graph is invalid (4 problems): graph: name: a graph needs")
    assert error.message.endswith("and 1 more")


@pytest.mark.parametrize("user_id", ["", "a\x00b", "u" * 256])
def test_a_call_needs_a_storable_user_id(user_id: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        require_user_id(user_id)

    assert raised.value.reason == "USER_ID_REQUIRED"
