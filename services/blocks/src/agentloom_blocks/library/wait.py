"""Waits before passing a value on."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field

from agentloom_blocks.sdk import Block, BlockContext, BlockError, BlockExample

MAX_WAIT_S = 600.0


class WaitBlock(Block):
    id = "wait_block"
    name = "Wait"
    description = (
        "Waits `seconds` (at most the platform's limit, 10 minutes by default), then yields "
        "`value` unchanged. Stopping the execution ends the wait at once."
    )
    categories = ("flow",)
    cost_per_run = 0

    class Input(BaseModel):
        seconds: float = Field(
            ge=0, le=MAX_WAIT_S, title="Seconds", description="How long to wait."
        )
        value: Any = Field(default=None, title="Value", description="What to yield after the wait.")

    class Output(BaseModel):
        value: Any = Field(title="Value", description="The value, after the wait.")

    examples = (
        BlockExample(input={"seconds": 0.01, "value": "later"}, outputs=[("value", "later")]),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        limit = min(MAX_WAIT_S, context.config.max_wait_s)
        if input.seconds > limit:
            raise BlockError(f"a wait is at most {limit:g} seconds, not {input.seconds:g}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(context.cancelled.wait(), timeout=input.seconds)
        if context.cancelled.is_set():
            raise BlockError("the wait was cancelled")
        yield "value", input.value
