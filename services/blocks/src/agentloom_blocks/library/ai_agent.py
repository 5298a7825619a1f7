"""An LLM agent that calls other nodes of the graph as tools until it has an answer."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any, ClassVar

from pydantic import BaseModel, ConfigDict, Field

from agentloom_blocks.library.llm_call import format_prompt
from agentloom_blocks.providers import LLM_CREDENTIALS, ChatRequest, ToolCall, add_usage, chat
from agentloom_blocks.sdk import (
    Block,
    BlockContext,
    BlockCosts,
    BlockError,
    BlockExample,
    ToolError,
)

# What one tool result may put into the conversation; longer results are cut (and say so).
MAX_TOOL_RESULT_CHARS = 20_000


class AiAgentBlock(Block):
    id = "ai_agent_block"
    name = "AI agent with tools"
    description = (
        "Gives a task to a large language model together with tools: the nodes you link from "
        "this block's `tools` pin (each link names one argument the model fills in; the node's "
        "other inputs keep their defaults). The model calls tools, sees their outputs, and "
        "calls again until it answers; every call runs as a node execution of this execution, "
        "recorded and charged like any node. Yields the final answer on `response`, each call "
        "on `tool_calls`, the whole conversation and the tokens used."
    )
    categories = ("ai", "agent")
    cost_per_run = 1
    costs = BlockCosts(per_1k_tokens=1)
    credentials = LLM_CREDENTIALS
    accepts_extra_inputs = True
    uses_tools: ClassVar[bool] = True

    class Input(BaseModel):
        model_config = ConfigDict(extra="allow")

        prompt: str = Field(
            title="Task", description="What the agent should do; {name} inserts `name`."
        )
        model: str = Field(
            default="gpt-4o-mini",
            title="Model",
            description="A model that can call tools (the name picks the provider).",
        )
        sys_prompt: str = Field(
            default="",
            title="System prompt",
            description="Instructions sent as the system message (none when empty).",
        )
        max_iterations: int = Field(
            default=10,
            ge=1,
            le=25,
            title="Max rounds",
            description="Model calls at most; the node fails if no answer comes by then.",
        )
        max_tokens: int | None = Field(
            default=None,
            ge=1,
            title="Max tokens",
            description="The longest answer per model call, in tokens.",
            json_schema_extra={"advanced": True},
        )
        temperature: float | None = Field(
            default=None,
            ge=0,
            le=2,
            title="Temperature",
            description="Randomness, 0 to 2 (the model's default if empty).",
            json_schema_extra={"advanced": True},
        )
        prompt_values: dict[str, Any] = Field(
            default_factory=dict,
            title="Prompt values",
            description="Values for the placeholders in the task, by name.",
        )

    class Output(BaseModel):
        response: str = Field(title="Response", description="The agent's final answer.")
        tool_calls: list[dict[str, Any]] = Field(
            title="Tool calls",
            description="Each call in order: tool, arguments, and its outputs or error.",
        )
        conversation: list[dict[str, Any]] = Field(
            title="Conversation", description="Every message exchanged with the model."
        )
        usage: dict[str, int] = Field(
            title="Usage", description="Tokens used by all the model calls together."
        )
        tools: Any = Field(
            default=None,
            title="Tools",
            description="Link this pin to the inputs of the nodes the agent may call; "
            "nothing is ever sent on it.",
        )

    examples = (
        BlockExample(
            input={"prompt": "Tell me about {topic}.", "topic": "looms"},
            outputs=[
                ("tool_calls", []),
                (
                    "conversation",
                    [
                        {"role": "user", "content": "Tell me about looms."},
                        {"role": "assistant", "content": "summary: Tell me about looms."},
                    ],
                ),
                ("usage", {"prompt_tokens": 4, "completion_tokens": 5, "total_tokens": 9}),
                ("response", "summary: Tell me about looms."),
            ],
            description="With no tools linked it answers like an LLM call.",
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        values = {**input.prompt_values, **(input.model_extra or {})}
        messages: list[dict[str, Any]] = [
            {"role": "user", "content": format_prompt(input.prompt, values)}
        ]
        system = format_prompt(input.sys_prompt, values) if input.sys_prompt else ""
        trace: list[dict[str, Any]] = []
        usage: dict[str, int] = {}
        for _round in range(input.max_iterations):
            request = ChatRequest(
                model=input.model,
                messages=messages,
                system=system,
                max_tokens=input.max_tokens,
                temperature=input.temperature,
                tools=context.tools,
            )
            result = await chat(context, request)
            usage = add_usage(usage, result.usage)
            if not result.tool_calls:
                messages.append({"role": "assistant", "content": result.text})
                yield "tool_calls", trace
                yield "conversation", messages
                if usage:
                    yield "usage", usage
                yield "response", result.text
                return
            messages.append(
                {
                    "role": "assistant",
                    "content": result.text,
                    "tool_calls": [
                        {"id": c.id, "name": c.name, "arguments": c.arguments}
                        for c in result.tool_calls
                    ],
                }
            )
            for call in result.tool_calls:
                record = await _call(context, call)
                trace.append(record)
                messages.append(
                    {
                        "role": "tool",
                        "tool_call_id": call.id,
                        "name": call.name,
                        "content": _as_tool_content(record),
                    }
                )
        # Out of rounds: what happened is still shown, then the node fails.
        yield "tool_calls", trace
        yield "conversation", messages
        if usage:
            yield "usage", usage
        raise BlockError(
            f"the model gave no final answer within {input.max_iterations} rounds "
            "(raise max_iterations or make the task clearer)"
        )


async def _call(context: BlockContext, call: ToolCall) -> dict[str, Any]:
    """Run one tool call; a failure becomes the call's error, for the model to see."""
    record: dict[str, Any] = {"id": call.id, "tool": call.name, "arguments": call.arguments}
    if call.arguments is None:
        record["error"] = call.problem
    elif context.call_tool is None or call.name not in {t.name for t in context.tools}:
        offered = ", ".join(sorted(t.name for t in context.tools)) or "none"
        record["error"] = f"there is no tool named {call.name!r} (tools: {offered})"
    else:
        try:
            record["outputs"] = await context.call_tool(call.name, call.arguments)
        except ToolError as error:
            record["error"] = str(error)
    return record


def _as_tool_content(record: dict[str, Any]) -> str:
    shown = {"error": record["error"]} if "error" in record else record["outputs"]
    text = json.dumps(shown, ensure_ascii=False, default=str)
    if len(text) > MAX_TOOL_RESULT_CHARS:
        text = text[:MAX_TOOL_RESULT_CHARS] + f"... (cut at {MAX_TOOL_RESULT_CHARS} characters)"
    return text
