"""The tool-calling agent block against real local servers speaking the OpenAI and
Anthropic protocols; the tools here are plain functions standing in for the engine."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping
from typing import Any

import pytest

from agentloom_blocks.library.ai_agent import AiAgentBlock
from agentloom_blocks.sdk import BlockContext, BlockError, RetryableBlockError, Tool, ToolError
from agentloom_devkit.fake_anthropic import FakeAnthropic
from agentloom_devkit.fake_openai import FakeOpenAI

ADD = Tool(
    "add",
    "Adds two numbers.",
    {
        "type": "object",
        "properties": {"a": {"type": "number"}, "b": {"type": "number"}},
        "required": ["a", "b"],
    },
)
SHOUT = Tool(
    "shout", "Upper-cases text.", {"type": "object", "properties": {"text": {"type": "string"}}}
)


@pytest.fixture(autouse=True)
def fresh_requests(fake_openai: FakeOpenAI, fake_anthropic: FakeAnthropic) -> None:
    fake_openai.clear_requests()
    fake_anthropic.clear_requests()


class Toolbox:
    """Tools as the engine would offer them, recording each call."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []

    async def __call__(self, name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
        self.calls.append((name, dict(arguments)))
        if name == "add":
            if not all(isinstance(arguments.get(k), int | float) for k in ("a", "b")):
                raise ToolError("a and b must be numbers")
            return {"result": arguments["a"] + arguments["b"]}
        return {"text": str(arguments.get("text", "")).upper()}


def with_tools(context: BlockContext, toolbox: Toolbox) -> BlockContext:
    return dataclasses.replace(context, tools=(ADD, SHOUT), call_tool=toolbox)


async def run_agent(context: BlockContext, **input_data: Any) -> list[tuple[str, Any]]:
    block_input = AiAgentBlock.Input(**input_data)
    return [(pin, value) async for pin, value in AiAgentBlock().run(block_input, context)]


@pytest.mark.parametrize("model", ["gpt-4o-mini", "claude-3-5-haiku-latest"])
async def test_the_agent_calls_a_tool_and_answers_with_its_result(
    context: BlockContext, model: str
) -> None:
    toolbox = Toolbox()
    prompt = 'What is 2 + 40? [[tool:add {"a": 2, "b": 40}]]'
    outputs = dict(await run_agent(with_tools(context, toolbox), prompt=prompt, model=model))
    assert toolbox.calls == [("add", {"a": 2, "b": 40})]
    assert outputs["response"] == 'tool results: {"result": 42}'
    [call] = outputs["tool_calls"]
    assert (call["tool"], call["arguments"], call["outputs"]) == (
        "add",
        {"a": 2, "b": 40},
        {"result": 42},
    )
    roles = [m["role"] for m in outputs["conversation"]]
    assert roles == ["user", "assistant", "tool", "assistant"]
    assert outputs["usage"]["total_tokens"] > 0


async def test_openai_gets_functions_and_the_results_of_its_calls(
    context: BlockContext, fake_openai: FakeOpenAI
) -> None:
    prompt = '[[tool:add {"a": 1, "b": 2}]] [[tool:shout {"text": "hi"}]]'
    outputs = dict(await run_agent(with_tools(context, Toolbox()), prompt=prompt))
    first, second = (r["body"] for r in fake_openai.requests())
    assert first["tools"][0] == {
        "type": "function",
        "function": {"name": "add", "description": ADD.description, "parameters": ADD.parameters},
    }
    assistant, *results = second["messages"][1:]
    call_ids = [c["id"] for c in assistant["tool_calls"]]
    assert [c["function"]["name"] for c in assistant["tool_calls"]] == ["add", "shout"]
    assert [(r["role"], r["tool_call_id"]) for r in results] == [("tool", i) for i in call_ids]
    assert [json.loads(r["content"]) for r in results] == [{"result": 3}, {"text": "HI"}]
    assert outputs["response"] == 'tool results: {"result": 3} | {"text": "HI"}'


async def test_anthropic_gets_tool_use_and_tool_result_blocks(
    context: BlockContext, fake_anthropic: FakeAnthropic
) -> None:
    prompt = '[[tool:add {"a": 1, "b": 2}]] [[tool:shout {"text": "hi"}]]'
    await run_agent(with_tools(context, Toolbox()), prompt=prompt, model="anthropic/claude-x")
    first, second = (r["body"] for r in fake_anthropic.requests())
    assert first["tools"][0] == {
        "name": "add",
        "description": ADD.description,
        "input_schema": ADD.parameters,
    }
    _user, assistant, results = second["messages"]
    uses = [b for b in assistant["content"] if b["type"] == "tool_use"]
    assert [(u["name"], u["input"]) for u in uses] == [
        ("add", {"a": 1, "b": 2}),
        ("shout", {"text": "hi"}),
    ]
    # Both results go back in one user turn, each naming its call.
    assert results["role"] == "user"
    assert [(r["type"], r["tool_use_id"]) for r in results["content"]] == [
        ("tool_result", u["id"]) for u in uses
    ]


async def test_a_failing_or_unknown_tool_is_shown_to_the_model_not_fatal(
    context: BlockContext,
) -> None:
    toolbox = Toolbox()
    prompt = '[[tool:add {"a": "x", "b": 1}]] [[tool:delete_everything {}]]'
    outputs = dict(await run_agent(with_tools(context, toolbox), prompt=prompt))
    errors = [call["error"] for call in outputs["tool_calls"]]
    assert errors[0] == "a and b must be numbers"
    assert "no tool named 'delete_everything'" in errors[1]
    assert toolbox.calls == [("add", {"a": "x", "b": 1})]  # the unknown one never ran
    assert outputs["response"].startswith('tool results: {"error": "a and b must be numbers"}')


async def test_arguments_that_are_not_json_are_answered_with_the_problem(
    context: BlockContext,
) -> None:
    toolbox = Toolbox()
    outputs = dict(await run_agent(with_tools(context, toolbox), prompt="[[tool:add {a: 1}]]"))
    [call] = outputs["tool_calls"]
    assert call["arguments"] is None
    assert "not valid JSON" in call["error"]
    assert toolbox.calls == []


async def test_the_agent_fails_after_max_iterations_showing_what_it_did(
    context: BlockContext, fake_openai: FakeOpenAI
) -> None:
    toolbox = Toolbox()
    prompt = '[[tool:add {"a": 1, "b": 1}]] [[tool-loop]]'
    outputs: list[tuple[str, Any]] = []
    with pytest.raises(BlockError, match="no final answer within 3 rounds") as failure:
        block_input = AiAgentBlock.Input(prompt=prompt, max_iterations=3)
        async for pin, value in AiAgentBlock().run(block_input, with_tools(context, toolbox)):
            outputs.append((pin, value))
    assert not failure.value.retryable
    assert len(fake_openai.requests()) == 3
    assert len(toolbox.calls) == 3
    assert [pin for pin, _ in outputs] == ["tool_calls", "conversation", "usage"]


async def test_a_rate_limited_provider_is_a_retryable_failure(context: BlockContext) -> None:
    with pytest.raises(RetryableBlockError, match="429"):
        await run_agent(with_tools(context, Toolbox()), prompt="[[fail-429]]")


async def test_without_tools_no_tools_are_sent(
    context: BlockContext, fake_openai: FakeOpenAI
) -> None:
    outputs = dict(await run_agent(context, prompt='[[tool:add {"a": 1, "b": 1}]] hello'))
    assert "tools" not in fake_openai.requests()[0]["body"]
    assert outputs["tool_calls"] == []
    assert outputs["response"].startswith("summary:")
