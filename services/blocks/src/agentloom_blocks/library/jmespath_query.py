"""Queries data with JMESPath, the JSON query language (jmespath.org)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import jmespath  # type: ignore[import-untyped]
from jmespath.exceptions import JMESPathError  # type: ignore[import-untyped]
from pydantic import BaseModel, Field

from agentloom_blocks.sdk import Block, BlockContext, BlockError, BlockExample


class JmespathQueryBlock(Block):
    id = "jmespath_query_block"
    name = "JMESPath query"
    description = (
        "Selects and reshapes data with a JMESPath expression, e.g. `people[?age > `30`].name`; "
        "yields the result (null when nothing matches)."
    )
    categories = ("data",)
    cost_per_run = 0

    class Input(BaseModel):
        data: Any = Field(title="Data", description="The data to query.")
        query: str = Field(min_length=1, title="Query", description="The JMESPath expression.")

    class Output(BaseModel):
        result: Any = Field(title="Result", description="What the expression selects.")

    examples = (
        BlockExample(
            input={
                "data": {"people": [{"name": "Ada", "age": 36}, {"name": "Alan", "age": 41}]},
                "query": "people[?age > `40`].name",
            },
            outputs=[("result", ["Alan"])],
        ),
        BlockExample(input={"data": {"a": 1}, "query": "b.c"}, outputs=[("result", None)]),
        BlockExample(
            input={"data": {}, "query": "a[?"},
            outputs=[
                (
                    "error",
                    "invalid JMESPath query: Invalid jmespath expression: Incomplete expression",
                )
            ],
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        try:
            expression = jmespath.compile(input.query)
        except JMESPathError as exc:
            message = " ".join(str(exc).split("\n")[0].split()).rstrip(":")
            raise BlockError(f"invalid JMESPath query: {message}") from None
        try:
            result = expression.search(input.data)
        except JMESPathError as exc:
            raise BlockError(f"JMESPath query failed: {exc}") from None
        yield "result", result
