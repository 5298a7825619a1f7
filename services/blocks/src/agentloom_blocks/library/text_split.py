"""Splits a text into a list of texts on a delimiter."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field

from agentloom_blocks.sdk import Block, BlockContext, BlockExample


class TextSplitBlock(Block):
    id = "text_split_block"
    name = "Split text"
    description = (
        "Splits a text on a delimiter and yields the pieces as one list on `texts`. "
        "An empty text gives an empty list. Link `texts` to 'Step through items' to run "
        "something once per piece."
    )
    categories = ("text",)
    cost_per_run = 1

    class Input(BaseModel):
        text: str = Field(title="Text", description="The text to split.")
        delimiter: str = Field(
            default=",",
            min_length=1,
            title="Delimiter",
            description="The separator between pieces (taken literally, not a pattern).",
        )
        strip: bool = Field(
            default=True,
            title="Strip",
            description="Remove whitespace around each piece.",
        )

    class Output(BaseModel):
        texts: list[str] = Field(title="Texts", description="The pieces, in order.")

    examples = (
        BlockExample(
            input={"text": "apples, pears ,plums"},
            outputs=[("texts", ["apples", "pears", "plums"])],
        ),
        BlockExample(
            input={"text": "a | b", "delimiter": "|", "strip": False},
            outputs=[("texts", ["a ", " b"])],
        ),
        BlockExample(input={"text": ""}, outputs=[("texts", [])]),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        texts = input.text.split(input.delimiter) if input.text else []
        if input.strip:
            texts = [text.strip() for text in texts]
        yield "texts", texts
