"""Passes its input on unchanged: a junction for wiring, and a test fixture."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field

from agentloom_blocks.sdk import Block, BlockContext, BlockExample


class PassThroughBlock(Block):
    id = "pass_through_block"
    inline = True
    name = "Pass through"
    description = "Yields the value it receives, unchanged, on its `value` pin."
    categories = ("flow", "data")
    cost_per_run = 0

    class Input(BaseModel):
        value: Any = Field(title="Value", description="Any value.")

    class Output(BaseModel):
        value: Any = Field(title="Value", description="The same value.")

    examples = (
        BlockExample(input={"value": "hello"}, outputs=[("value", "hello")]),
        BlockExample(input={"value": [1, {"a": None}]}, outputs=[("value", [1, {"a": None}])]),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        yield "value", input.value
