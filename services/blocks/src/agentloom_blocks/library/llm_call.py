"""Calls a large language model over the OpenAI chat-completions protocol."""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentloom_blocks.providers import LLM_CREDENTIALS, ChatRequest, chat
from agentloom_blocks.sdk import Block, BlockContext, BlockCosts, BlockExample

# `{name}` or `{{ name }}`; anything else between braces (JSON, code) is plain text.
_PLACEHOLDER = re.compile(r"\{\{\s*(?P<jinja>[^\W\d]\w*)\s*\}\}|\{(?P<plain>[^\W\d]\w*)\}")


def format_prompt(text: str, values: Mapping[str, Any]) -> str:
    """Replace `{name}` and `{{ name }}` for the names in `values`; leave every other brace.

    One pass: text inserted from a value is never itself searched for placeholders.
    Strings go in as they are, None as nothing, lists and dicts as JSON.
    """

    def replace(match: re.Match[str]) -> str:
        name = match.group("jinja") or match.group("plain")
        return _as_text(values[name]) if name in values else match.group(0)

    return _PLACEHOLDER.sub(replace, text)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, dict | list | tuple):
        return json.dumps(value, ensure_ascii=False, default=str)
    return str(value)


class LlmCallBlock(Block):
    id = "llm_call_block"
    name = "LLM call"
    description = (
        "Sends a prompt to a large language model and "
        "yields its answer on `response` and the token counts on `usage`. Placeholders such "
        "as {text} in the prompt and system prompt are filled from `prompt_values` and from "
        "any extra input pin you wire (an extra pin wins); other braces are left as written. "
        "The model name picks the provider: 'anthropic/...' or 'claude...' for Anthropic, "
        "'ollama/...' for Ollama, anything else for the OpenAI-compatible endpoint."
    )
    categories = ("ai", "text")
    cost_per_run = 1
    costs = BlockCosts(per_1k_tokens=1)
    credentials = LLM_CREDENTIALS
    accepts_extra_inputs = True

    class Input(BaseModel):
        model_config = ConfigDict(extra="allow")

        prompt: str = Field(
            title="Prompt",
            description="What to ask; {name} inserts the value of `name`.",
        )
        model: str = Field(default="gpt-4o-mini", title="Model", description="The model to call.")
        sys_prompt: str = Field(
            default="",
            title="System prompt",
            description="Instructions sent as the system message (none when empty).",
        )
        max_tokens: int | None = Field(
            default=None,
            ge=1,
            title="Max tokens",
            description="The longest answer to generate, in tokens (the model's limit if empty).",
        )
        temperature: float | None = Field(
            default=None,
            ge=0,
            le=2,
            title="Temperature",
            description="Randomness, 0 to 2 (the model's default if empty).",
        )
        prompt_values: dict[str, Any] = Field(
            default_factory=dict,
            title="Prompt values",
            description="Values for the placeholders in the prompt, by name.",
        )

    class Output(BaseModel):
        response: str = Field(title="Response", description="The model's answer.")
        usage: dict[str, int] = Field(
            title="Usage",
            description="Tokens used: prompt_tokens, completion_tokens, total_tokens.",
        )

    examples = (
        BlockExample(
            input={
                "model": "gpt-4",
                "prompt": "Summarize the following text: {input_text}",
                "max_tokens": 150,
                "input_text": "Bees dance to tell other bees where the flowers are.",
            },
            outputs=[
                (
                    "response",
                    "summary: Summarize the following text: Bees dance to tell other bees "
                    "where the",
                ),
                ("usage", {"prompt_tokens": 14, "completion_tokens": 13, "total_tokens": 27}),
            ],
            description="An extra pin fills {input_text} (answers as from the test server).",
        ),
        BlockExample(
            input={
                "prompt": 'Answer as {"topic": ...} about {topic}.',
                "sys_prompt": "Be terse.",
                "prompt_values": {"topic": "tea"},
                "temperature": 0,
            },
            outputs=[
                ("response", 'summary: Answer as {"topic": ...} about tea.'),
                ("usage", {"prompt_tokens": 8, "completion_tokens": 7, "total_tokens": 15}),
            ],
            description="Braces that are not placeholders stay as written.",
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        values = {**input.prompt_values, **(input.model_extra or {})}
        request = ChatRequest(
            model=input.model,
            messages=[{"role": "user", "content": format_prompt(input.prompt, values)}],
            system=format_prompt(input.sys_prompt, values) if input.sys_prompt else "",
            max_tokens=input.max_tokens,
            temperature=input.temperature,
        )
        result = await chat(context, request)
        yield "response", result.text
        if result.usage:
            yield "usage", result.usage
