"""Keeps a value for every later run of the blocks it feeds (its links are static)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field

from agentloom_blocks.sdk import Block, BlockContext, BlockExample


class StoreValueBlock(Block):
    id = "store_value_block"
    name = "Store value"
    description = (
        "Yields `data` (or `input` when data is empty) on `output`. Its output links are "
        "static: the blocks it feeds keep the value for all their later runs, so a constant "
        "or a setting can be wired once into a loop."
    )
    categories = ("flow", "data")
    cost_per_run = 0
    static_output = True

    class Input(BaseModel):
        input: Any = Field(title="Input", description="The value to store; also a trigger.")
        data: Any = Field(
            default=None,
            title="Data",
            description="A fixed value to store instead of `input` (when given).",
        )

    class Output(BaseModel):
        output: Any = Field(title="Output", description="The value stored.")

    examples = (
        BlockExample(input={"input": "hello"}, outputs=[("output", "hello")]),
        BlockExample(
            input={"input": "trigger", "data": {"limit": 5}}, outputs=[("output", {"limit": 5})]
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        yield "output", input.input if input.data is None else input.data
