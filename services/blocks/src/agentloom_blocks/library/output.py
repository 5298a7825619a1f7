"""An output of a graph: every value it receives is an output of the execution."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field

from agentloom_blocks.sdk import Block, BlockContext, BlockExample, BlockKind


class OutputBlock(Block):
    id = "output_block"
    inline = True
    name = "Graph output"
    description = (
        "An output of the graph. Each value linked into `value` becomes an output of the "
        "execution under this block's `name`; several values give several outputs, in order."
    )
    categories = ("output",)
    kind = BlockKind.OUTPUT
    cost_per_run = 0

    class Input(BaseModel):
        name: str = Field(min_length=1, title="Name", description="The name of the graph output.")
        value: Any = Field(title="Value", description="The value to record as the output.")
        title: str | None = Field(
            default=None, title="Title", description="A label for the output in the UI."
        )
        description: str | None = Field(
            default=None,
            title="Description",
            description="What the output holds, for the graph's output schema.",
        )

    class Output(BaseModel):
        output: Any = Field(title="Output", description="The value recorded, passed on.")

    examples = (
        BlockExample(
            input={"name": "summary", "value": "A short summary."},
            outputs=[("output", "A short summary.")],
        ),
        BlockExample(
            input={"name": "scores", "value": {"a": 1, "b": [2, 3]}},
            outputs=[("output", {"a": 1, "b": [2, 3]})],
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        yield "output", input.value
