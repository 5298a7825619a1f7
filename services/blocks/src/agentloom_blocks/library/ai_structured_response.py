"""Asks a model for JSON matching a JSON Schema, and asks again while it does not."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

import regex  # type: ignore[import-untyped]
from jsonschema import Draft202012Validator  # type: ignore[import-untyped]
from jsonschema.exceptions import SchemaError  # type: ignore[import-untyped]
from pydantic import BaseModel, ConfigDict, Field

from agentloom_blocks.library.llm_call import format_prompt
from agentloom_blocks.providers import LLM_CREDENTIALS, ChatRequest, add_usage, chat
from agentloom_blocks.sdk import Block, BlockContext, BlockCosts, BlockError, BlockExample

_FENCE = regex.compile(r"```(?:json)?\s*(.*?)```", regex.DOTALL)


def extract_json(text: str) -> Any:
    """The JSON value in a model's answer: the whole text, a ```json fence, or the first
    object/array in it. ValueError when there is none."""
    candidates = [text.strip()]
    candidates += [m.group(1).strip() for m in _FENCE.finditer(text)]
    decoder = json.JSONDecoder()
    for candidate in candidates:
        try:
            return json.loads(candidate)
        except ValueError:
            pass
    for index, char in enumerate(text):
        if char in "[{":
            try:
                return decoder.raw_decode(text, index)[0]
            except ValueError:
                continue
    raise ValueError("the answer contains no JSON")


def validation_problem(value: Any, validator: Draft202012Validator) -> str | None:
    """The first way `value` breaks the schema, said plainly; None when it is valid."""
    error = next(iter(sorted(validator.iter_errors(value), key=lambda e: list(e.path))), None)
    if error is None:
        return None
    where = "/".join(str(p) for p in error.path) or "(root)"
    return f"at {where}: {error.message}"


class AiStructuredResponseBlock(Block):
    id = "ai_structured_response_block"
    name = "AI structured response"
    description = (
        "Asks a model for a JSON answer matching `expected_format` (a JSON Schema), checks "
        "it, and asks again with the reason when it does not match, up to `retry` times. "
        "Yields the parsed answer on `response` and the tokens used on `usage`."
    )
    categories = ("ai",)
    cost_per_run = 1
    costs = BlockCosts(per_1k_tokens=1)
    credentials = LLM_CREDENTIALS
    accepts_extra_inputs = True

    class Input(BaseModel):
        model_config = ConfigDict(extra="allow")

        prompt: str = Field(title="Prompt", description="What to ask; {name} inserts values.")
        expected_format: dict[str, Any] = Field(
            title="Expected format",
            description='A JSON Schema the answer must match, e.g. {"type": "object", ...}.',
        )
        model: str = Field(default="gpt-4o-mini", title="Model", description="The model to call.")
        sys_prompt: str = Field(
            default="", title="System prompt", description="Extra instructions for the model."
        )
        retry: int = Field(
            default=3, ge=0, le=10, title="Retries", description="Asks again after a bad answer."
        )
        prompt_values: dict[str, Any] = Field(
            default_factory=dict,
            title="Prompt values",
            description="Values for the placeholders in the prompt, by name.",
        )

    class Output(BaseModel):
        response: Any = Field(title="Response", description="The answer, matching the schema.")
        usage: dict[str, int] = Field(title="Usage", description="Tokens used by all attempts.")

    examples = (
        BlockExample(
            input={
                "prompt": "Capital of France? "
                '[[reply]]{"city": 1}[[or]]{"city": "Paris"}[[/reply]]',
                "expected_format": {
                    "type": "object",
                    "properties": {"city": {"type": "string"}},
                    "required": ["city"],
                },
            },
            outputs=[
                ("response", {"city": "Paris"}),
                ("usage", {"prompt_tokens": 78, "completion_tokens": 4, "total_tokens": 82}),
            ],
            description="A first answer that breaks the schema is sent back with the reason.",
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        try:
            Draft202012Validator.check_schema(input.expected_format)
        except SchemaError as exc:
            raise BlockError(f"expected_format is not a valid JSON Schema: {exc.message}") from None
        validator = Draft202012Validator(input.expected_format)
        values = {**input.prompt_values, **(input.model_extra or {})}
        system = (
            "Answer with JSON only, no prose and no code fence, matching this JSON Schema:\n"
            + json.dumps(input.expected_format, ensure_ascii=False)
        )
        if input.sys_prompt:
            system = format_prompt(input.sys_prompt, values) + "\n\n" + system
        messages = [{"role": "user", "content": format_prompt(input.prompt, values)}]
        usage: dict[str, int] = {}
        problem = ""
        for _attempt in range(input.retry + 1):
            result = await chat(context, ChatRequest(input.model, list(messages), system))
            usage = add_usage(usage, result.usage)
            try:
                answer = extract_json(result.text)
                problem = validation_problem(answer, validator) or ""
            except ValueError as exc:
                problem = str(exc)
            if not problem:
                yield "response", answer
                yield "usage", dict(sorted(usage.items()))
                return
            messages += [
                {"role": "assistant", "content": result.text},
                {
                    "role": "user",
                    "content": f"That answer does not match the schema ({problem}). "
                    "Answer again with JSON only.",
                },
            ]
        raise BlockError(
            f"the model gave no answer matching the schema in {input.retry + 1} attempts; "
            f"last problem: {problem}"
        )
