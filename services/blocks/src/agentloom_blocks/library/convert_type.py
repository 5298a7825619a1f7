"""Converts a value to another type: text, number, integer, boolean, list, dictionary."""

from __future__ import annotations

import enum
import json
import math
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field

from agentloom_blocks.sdk import Block, BlockContext, BlockError, BlockExample

_TRUE = {"true", "yes", "y", "1", "on"}
_FALSE = {"false", "no", "n", "0", "off", ""}


class TargetType(enum.StrEnum):
    STRING = "string"
    NUMBER = "number"
    INTEGER = "integer"
    BOOLEAN = "boolean"
    LIST = "list"
    DICTIONARY = "dictionary"


def convert(value: Any, target: TargetType) -> Any:
    """`value` as `target`; a BlockError saying why when it cannot be."""
    fail = BlockError(f"cannot convert {value!r} to {target.value}")
    if target is TargetType.STRING:
        if isinstance(value, str):
            return value
        return (
            json.dumps(value, ensure_ascii=False) if isinstance(value, dict | list) else str(value)
        )
    if target in (TargetType.NUMBER, TargetType.INTEGER):
        if isinstance(value, bool):
            number: float = int(value)
        elif isinstance(value, int | float):
            number = value
        elif isinstance(value, str):
            try:
                number = float(value.strip())
            except ValueError:
                raise fail from None
        else:
            raise fail
        if not math.isfinite(number):
            raise fail
        if target is TargetType.INTEGER:
            return int(number)
        return int(number) if float(number).is_integer() else number
    if target is TargetType.BOOLEAN:
        if isinstance(value, str):
            text = value.strip().lower()
            if text in _TRUE | _FALSE:
                return text in _TRUE
            raise fail
        return bool(value)
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            if target is TargetType.LIST:
                return [value]
            raise fail from None
    if target is TargetType.LIST:
        if isinstance(value, list):
            return value
        if isinstance(value, dict):
            return list(value.values())
        return [value]
    if isinstance(value, dict):
        return value
    if isinstance(value, list) and all(isinstance(p, list) and len(p) == 2 for p in value):
        return {str(k): v for k, v in value}
    raise fail


class ConvertTypeBlock(Block):
    id = "convert_type_block"
    inline = True
    name = "Convert type"
    description = (
        "Converts a value: to text (objects as JSON), to a number or integer (from numeric "
        "text), to a boolean ('yes'/'no', 'true'/'false', '1'/'0'), to a list or a "
        "dictionary (from JSON text, or [key, value] pairs)."
    )
    categories = ("data",)
    cost_per_run = 0

    class Input(BaseModel):
        value: Any = Field(title="Value", description="The value to convert.")
        type: TargetType = Field(title="Type", description="The type to convert to.")

    class Output(BaseModel):
        value: Any = Field(title="Value", description="The converted value.")

    examples = (
        BlockExample(input={"value": " 42 ", "type": "number"}, outputs=[("value", 42)]),
        BlockExample(input={"value": "2.9", "type": "integer"}, outputs=[("value", 2)]),
        BlockExample(input={"value": "Yes", "type": "boolean"}, outputs=[("value", True)]),
        BlockExample(input={"value": {"a": 1}, "type": "string"}, outputs=[("value", '{"a": 1}')]),
        BlockExample(input={"value": "[1, 2]", "type": "list"}, outputs=[("value", [1, 2])]),
        BlockExample(
            input={"value": [["a", 1], ["b", 2]], "type": "dictionary"},
            outputs=[("value", {"a": 1, "b": 2})],
        ),
        BlockExample(
            input={"value": "many", "type": "number"},
            outputs=[("error", "cannot convert 'many' to number")],
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        yield "value", convert(input.value, input.type)
