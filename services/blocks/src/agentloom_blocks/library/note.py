"""A note on the canvas: documentation inside a graph; it never runs."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field

from agentloom_blocks.sdk import Block, BlockContext, BlockExample, BlockKind


class NoteBlock(Block):
    id = "note_block"
    name = "Note"
    description = "A sticky note for the graph's readers. The scheduler never runs it."
    categories = ("basic",)
    kind = BlockKind.NOTE
    cost_per_run = 0

    class Input(BaseModel):
        text: str = Field(
            default="", title="Text", description="What the note says (Markdown is fine)."
        )

    class Output(BaseModel):
        output: str = Field(title="Output", description="The note's text, if ever run.")

    examples = (
        BlockExample(
            input={"text": "Remember the bees."}, outputs=[("output", "Remember the bees.")]
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        yield "output", input.text
