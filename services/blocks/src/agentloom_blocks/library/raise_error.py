"""Always fails: for testing how graphs, retries and `error` pins handle failures."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field

from agentloom_blocks.sdk import Block, BlockContext, BlockError, BlockExample, RetryableBlockError


class RaiseErrorBlock(Block):
    id = "raise_error_block"
    name = "Raise error"
    description = (
        "Always fails with the given message, as a permanent error or, with `retryable`, as a "
        "transient one that the runner retries. For testing error handling in graphs."
    )
    categories = ("testing",)
    cost_per_run = 0

    class Input(BaseModel):
        message: str = Field(title="Message", description="The error message.")
        retryable: bool = Field(
            default=False,
            title="Retryable",
            description="Fail as a transient error, which the runner may retry.",
        )

    class Output(BaseModel):
        pass

    examples = (
        BlockExample(input={"message": "boom"}, outputs=[("error", "boom")]),
        BlockExample(
            input={"message": "try again", "retryable": True},
            outputs=[("error", "try again")],
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        if input.retryable:
            raise RetryableBlockError(input.message)
        raise BlockError(input.message)
        yield  # unreachable, but makes `run` an async generator like every block's
