"""The text input of a graph: the scheduler fills `value` from the execution's inputs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field

from agentloom_blocks.sdk import Block, BlockContext, BlockError, BlockExample, BlockKind


class TextInputBlock(Block):
    id = "text_input_block"
    inline = True
    name = "Text input"
    description = (
        "A text input of the graph. Each run of the graph supplies it under the input's name "
        "(e.g. inputs={'text': '...'}), and the block passes it on through its `text` pin."
    )
    categories = ("input", "text")
    kind = BlockKind.INPUT
    cost_per_run = 0

    class Input(BaseModel):
        name: str = Field(
            default="text",
            min_length=1,
            title="Name",
            description="The name of the graph input this block reads.",
        )
        value: str | None = Field(
            default=None,
            title="Value",
            description="The text given for this input; filled from the execution's inputs.",
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
        text: str = Field(title="Text", description="The text given for this input.")

    examples = (
        BlockExample(
            input={"name": "text", "value": "Hello, world"},
            outputs=[("text", "Hello, world")],
        ),
        BlockExample(
            input={"name": "topic"},
            outputs=[("error", "graph input 'topic' was not provided")],
            description="An input nobody provided fails the node.",
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        if input.value is None:
            raise BlockError(f"graph input {input.name!r} was not provided")
        yield "text", input.value
