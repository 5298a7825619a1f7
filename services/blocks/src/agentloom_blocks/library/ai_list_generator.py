"""Asks a model for a list, and yields it whole and item by item."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field

from agentloom_blocks.library.ai_structured_response import extract_json
from agentloom_blocks.providers import LLM_CREDENTIALS, ChatRequest, add_usage, chat
from agentloom_blocks.sdk import Block, BlockContext, BlockCosts, BlockError, BlockExample

INSTRUCTIONS = (
    'Answer with a JSON array of strings only (no prose, no code fence), e.g. ["first", "second"].'
)


class AiListGeneratorBlock(Block):
    id = "ai_list_generator_block"
    name = "AI list generator"
    description = (
        "Asks a model for a list (of ideas, names, steps...) about `focus`, optionally drawn "
        "from `source_data`; yields the whole list on `generated_list`, then each item on "
        "`list_item`, then the tokens used on `usage`. A malformed answer is asked again."
    )
    categories = ("ai", "text")
    cost_per_run = 1
    costs = BlockCosts(per_1k_tokens=1)
    credentials = LLM_CREDENTIALS

    class Input(BaseModel):
        focus: str = Field(title="Focus", description="What the list is of.")
        source_data: str = Field(
            default="", title="Source data", description="Text to draw the items from."
        )
        max_items: int | None = Field(
            default=None, ge=1, le=1000, title="Max items", description="The longest list."
        )
        model: str = Field(default="gpt-4o-mini", title="Model", description="The model to call.")
        retry: int = Field(
            default=3, ge=0, le=10, title="Retries", description="Asks again after a bad answer."
        )

    class Output(BaseModel):
        generated_list: list[str] = Field(title="Generated list", description="The list.")
        list_item: str = Field(title="List item", description="Each item, in turn.")
        usage: dict[str, int] = Field(title="Usage", description="Tokens used.")

    examples = (
        BlockExample(
            input={"focus": 'three fruits [[reply]]["apple", "pear", "plum"][[/reply]]'},
            outputs=[
                ("generated_list", ["apple", "pear", "plum"]),
                ("list_item", "apple"),
                ("list_item", "pear"),
                ("list_item", "plum"),
                ("usage", {"prompt_tokens": 25, "completion_tokens": 3, "total_tokens": 28}),
            ],
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        prompt = f"Make a list of {input.focus}."
        if input.max_items:
            prompt += f" At most {input.max_items} items."
        if input.source_data:
            prompt += f"\n\nUse this source:\n{input.source_data}"
        messages = [{"role": "user", "content": prompt}]
        usage: dict[str, int] = {}
        for _attempt in range(input.retry + 1):
            result = await chat(context, ChatRequest(input.model, list(messages), INSTRUCTIONS))
            usage = add_usage(usage, result.usage)
            try:
                items = extract_json(result.text)
            except ValueError:
                items = None
            if isinstance(items, list) and items:
                texts = [i if isinstance(i, str) else str(i) for i in items][: input.max_items]
                yield "generated_list", texts
                for text in texts:
                    yield "list_item", text
                yield "usage", usage
                return
            messages += [
                {"role": "assistant", "content": result.text},
                {"role": "user", "content": "That is not a JSON array of strings. " + INSTRUCTIONS},
            ]
        raise BlockError(f"the model gave no list in {input.retry + 1} attempts")
