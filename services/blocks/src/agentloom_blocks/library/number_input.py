"""The number input of a graph: the scheduler fills `value` from the execution's inputs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field

from agentloom_blocks.sdk import Block, BlockContext, BlockError, BlockExample, BlockKind


class NumberInputBlock(Block):
    id = "number_input_block"
    inline = True
    name = "Number input"
    description = (
        "A number input of the graph. Each run of the graph supplies it under the input's name "
        "(e.g. inputs={'number': 3}), and the block passes it on through its `number` pin. "
        "Whole numbers stay integers."
    )
    categories = ("input", "data")
    kind = BlockKind.INPUT
    cost_per_run = 0

    class Input(BaseModel):
        name: str = Field(
            default="number",
            min_length=1,
            title="Name",
            description="The name of the graph input this block reads.",
        )
        # int first, so that "42" from a form becomes 42 rather than 42.0.
        value: int | float | None = Field(
            default=None,
            title="Value",
            description="The number given for this input; filled from the execution's inputs.",
        )
        title: str | None = Field(
            default=None, title="Title", description="A label for the input in forms."
        )
        description: str | None = Field(
            default=None,
            title="Description",
            description="Help text for the input in forms and in the graph's input schema.",
        )

    class Output(BaseModel):
        number: int | float = Field(title="Number", description="The number given.")

    examples = (
        BlockExample(input={"name": "number", "value": 42}, outputs=[("number", 42)]),
        BlockExample(input={"name": "ratio", "value": 0.25}, outputs=[("number", 0.25)]),
        BlockExample(
            input={"name": "count"},
            outputs=[("error", "graph input 'count' was not provided")],
            description="An input nobody provided fails the node.",
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        if input.value is None:
            raise BlockError(f"graph input {input.name!r} was not provided")
        yield "number", input.value
