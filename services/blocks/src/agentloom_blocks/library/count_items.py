"""Counts the elements of a list."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field

from agentloom_blocks.sdk import Block, BlockContext, BlockExample


class CountItemsBlock(Block):
    id = "count_items_block"
    inline = True
    name = "Count items"
    description = "Counts the elements of a list and yields the number on `count`."
    categories = ("data",)
    cost_per_run = 1

    class Input(BaseModel):
        items: list[Any] = Field(title="Items", description="The list to count.")

    class Output(BaseModel):
        count: int = Field(title="Count", description="How many elements the list has.")

    examples = (
        BlockExample(input={"items": ["a", "b", "c"]}, outputs=[("count", 3)]),
        BlockExample(input={"items": []}, outputs=[("count", 0)]),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        yield "count", len(input.items)
