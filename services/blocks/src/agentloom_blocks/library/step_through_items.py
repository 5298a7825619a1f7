"""Yields the elements of a list or a dict one by one: the way a graph iterates."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field

from agentloom_blocks.sdk import Block, BlockContext, BlockExample


class StepThroughItemsBlock(Block):
    id = "step_through_items_block"
    inline = True
    name = "Step through items"
    description = (
        "Yields each element of a list (or each value of a dict) on `item`, followed by its "
        "index (or key) on `key`, in order. Every value yielded runs the linked blocks once "
        "more, so this is how a graph does something for each element."
    )
    categories = ("flow", "data")
    cost_per_run = 1

    class Input(BaseModel):
        items: list[Any] | dict[str, Any] = Field(
            title="Items", description="The list or dict to step through."
        )

    class Output(BaseModel):
        item: Any = Field(title="Item", description="One element, each in turn.")
        key: int | str = Field(
            title="Key", description="The element's index in the list, or its key in the dict."
        )

    examples = (
        BlockExample(
            input={"items": ["red", "green"]},
            outputs=[("item", "red"), ("key", 0), ("item", "green"), ("key", 1)],
        ),
        BlockExample(
            input={"items": {"x": 1, "y": [2]}},
            outputs=[("item", 1), ("key", "x"), ("item", [2]), ("key", "y")],
        ),
        BlockExample(input={"items": []}, outputs=[]),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        pairs = input.items.items() if isinstance(input.items, dict) else enumerate(input.items)
        for key, item in pairs:
            yield "item", item
            yield "key", key
