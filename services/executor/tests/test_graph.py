from __future__ import annotations

from agentloom_blocks.registry import load_blocks
from agentloom_executor.graph import GraphSnapshot, input_problems, ready_inputs, starting_nodes

BLOCKS = load_blocks()


def _graph() -> GraphSnapshot:
    return GraphSnapshot.from_json(
        {
            "nodes": [
                {"id": "in", "block_id": "text_input_block", "input_default": {"name": "topic"}},
                {
                    "id": "const",
                    "block_id": "text_template_block",
                    "input_default": {"template": "k"},
                },
                {
                    "id": "join",
                    "block_id": "text_template_block",
                    "input_default": {"template": "{{a}}{{b}}", "a": "default-a"},
                },
            ],
            "links": [
                {"source_id": "in", "source_name": "text", "sink_id": "join", "sink_name": "a"},
                {"source_id": "const", "source_name": "text", "sink_id": "join", "sink_name": "b"},
            ],
        }
    )


def test_input_blocks_and_unlinked_nodes_start_with_their_inputs() -> None:
    started = {node.id: inputs for node, inputs in starting_nodes(_graph(), BLOCKS, {"topic": "t"})}
    assert started == {"in": {"name": "topic", "value": "t"}, "const": {"template": "k"}}


def test_a_node_is_ready_only_when_every_linked_pin_has_a_value() -> None:
    graph = _graph()
    assert ready_inputs(graph, "join", {"a": "x"}) is None
    assert ready_inputs(graph, "join", {"a": "x", "b": "y"}) == {
        "template": "{{a}}{{b}}",
        "a": "x",
        "b": "y",
    }


def test_input_problems_name_unknown_and_missing_inputs() -> None:
    graph = _graph()
    assert input_problems(graph, BLOCKS, {"topic": "t"}) == {}
    assert input_problems(graph, BLOCKS, {}) == {"topic": "required input is missing"}
    assert input_problems(graph, BLOCKS, {"topic": "t", "other": 1}) == {
        "other": "the graph has no input of this name"
    }


def test_an_input_with_a_default_value_is_optional() -> None:
    graph = GraphSnapshot.from_json(
        {
            "nodes": [
                {"id": "in", "block_id": "text_input_block", "input_default": {"value": "dflt"}}
            ],
            "links": [],
        }
    )
    assert input_problems(graph, BLOCKS, {}) == {}
    ((_, inputs),) = starting_nodes(graph, BLOCKS, {})
    assert inputs == {"value": "dflt"}
