"""JSON text to data and back."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field

from agentloom_blocks.sdk import Block, BlockContext, BlockError, BlockExample

MAX_DEPTH = 64


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of a parsed JSON value, stopping early past `limit`."""
    depth, level = 0, [value]
    while level and depth <= limit:
        depth += 1
        level = [
            child
            for node in level
            if isinstance(node, dict | list)
            for child in (node.values() if isinstance(node, dict) else node)
        ]
    return depth


class JsonParseBlock(Block):
    id = "json_parse_block"
    inline = True
    name = "Parse JSON"
    description = "Parses JSON text into data (an object, a list, a number...) on `data`."
    categories = ("data",)
    cost_per_run = 0

    class Input(BaseModel):
        json_string: str = Field(title="JSON", description="The JSON text to parse.")

    class Output(BaseModel):
        data: Any = Field(title="Data", description="The parsed value.")

    examples = (
        BlockExample(
            input={"json_string": '{"a": [1, 2.5, null]}'},
            outputs=[("data", {"a": [1, 2.5, None]})],
        ),
        BlockExample(
            input={"json_string": '{"a": }'},
            outputs=[("error", "invalid JSON at line 1, column 7: Expecting value")],
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        try:
            data = json.loads(input.json_string)
        except json.JSONDecodeError as exc:
            raise BlockError(
                f"invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
            ) from None
        except RecursionError:
            raise BlockError(f"the JSON is nested deeper than {MAX_DEPTH} levels") from None
        if _depth(data, MAX_DEPTH) > MAX_DEPTH:
            raise BlockError(f"the JSON is nested deeper than {MAX_DEPTH} levels")
        yield "data", data


class JsonSerializeBlock(Block):
    id = "json_serialize_block"
    inline = True
    name = "Serialise to JSON"
    description = "Writes any value as JSON text, compact or indented."
    categories = ("data", "text")
    cost_per_run = 0

    class Input(BaseModel):
        data: Any = Field(title="Data", description="The value to write.")
        indent: int | None = Field(
            default=None,
            ge=0,
            le=8,
            title="Indent",
            description="Spaces per level (compact when empty).",
        )
        sort_keys: bool = Field(default=False, title="Sort keys", description="Sort object keys.")

    class Output(BaseModel):
        json_string: str = Field(title="JSON", description="The JSON text.")

    examples = (
        BlockExample(
            input={"data": {"b": 1, "a": "é"}, "sort_keys": True},
            outputs=[("json_string", '{"a": "é", "b": 1}')],
        ),
        BlockExample(input={"data": [1], "indent": 2}, outputs=[("json_string", "[\n  1\n]")]),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        text = json.dumps(
            input.data,
            indent=input.indent,
            sort_keys=input.sort_keys,
            ensure_ascii=False,
            default=str,
        )
        yield "json_string", text
