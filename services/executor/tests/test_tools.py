"""Which nodes an agent is offered as tools, under which names and argument schemas."""

from __future__ import annotations

from typing import Any

import pytest

from agentloom_blocks.registry import load_blocks
from agentloom_blocks.sdk import ToolError
from agentloom_executor.graph import GraphSnapshot
from agentloom_executor.tools import answer, tools_of

BLOCKS = load_blocks()


def _node(node_id: str, block_id: str, **defaults: Any) -> dict[str, Any]:
    return {"id": node_id, "block_id": block_id, "input_default": defaults}


def _tool_link(sink: str, pin: str) -> dict[str, Any]:
    return {"source_id": "agent", "source_name": "tools", "sink_id": sink, "sink_name": pin}


def _graph(nodes: list[dict[str, Any]], links: list[dict[str, Any]]) -> GraphSnapshot:
    return GraphSnapshot.from_json(
        {"nodes": [_node("agent", "ai_agent_block", prompt="p"), *nodes], "links": links}
    )


def test_each_linked_node_is_a_tool_whose_arguments_are_its_linked_pins() -> None:
    graph = _graph(
        [_node("calc", "calculator_block", operation="multiply", b=2)],
        [_tool_link("calc", "a"), _tool_link("calc", "b")],
    )
    [(name, tool)] = tools_of(graph, "agent", BLOCKS).items()
    assert name == tool.tool.name == "calculator"
    parameters = tool.tool.parameters
    assert sorted(parameters["properties"]) == ["a", "b"]
    assert parameters["properties"]["a"]["title"] == "A"
    # `b` has a default on the node: the model may leave it out.
    assert parameters["required"] == ["a"]
    assert parameters["additionalProperties"] is False
    assert "node calc" in tool.tool.description
    assert tool.inputs({"a": 21}) == {"operation": "multiply", "a": 21, "b": 2}


def test_arguments_beyond_the_linked_pins_are_refused() -> None:
    graph = _graph([_node("calc", "calculator_block")], [_tool_link("calc", "a")])
    tool = tools_of(graph, "agent", BLOCKS)["calculator"]
    with pytest.raises(ToolError, match="no argument 'operation'"):
        tool.inputs({"a": 1, "operation": "power"})


def test_two_nodes_of_one_block_are_told_apart_by_node_id() -> None:
    graph = _graph(
        [_node("hello", "text_template_block"), _node("bye", "text_template_block")],
        [_tool_link("hello", "template"), _tool_link("bye", "template")],
    )
    assert sorted(tools_of(graph, "agent", BLOCKS)) == ["text_template_bye", "text_template_hello"]


def test_nodes_that_cannot_answer_a_call_are_not_offered() -> None:
    graph = _graph(
        [
            _node("out", "output_block", name="x"),
            _node("sub", "agent_executor_block", graph_id="g"),
            _node("other", "ai_agent_block", prompt="q"),
        ],
        [_tool_link("out", "value"), _tool_link("sub", "inputs"), _tool_link("other", "prompt")],
    )
    assert tools_of(graph, "agent", BLOCKS) == {}


def test_a_tools_answer_groups_outputs_by_pin_and_leaves_out_errors() -> None:
    assert answer([["a", 1], ["b", 2], ["a", 3], ["error", "x"]]) == {"a": [1, 3], "b": 2}
