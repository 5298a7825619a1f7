"""Branches: compare two values and fire only the matching output."""

from __future__ import annotations

import enum
import math
import operator
from collections.abc import AsyncIterator, Callable
from typing import Any

from pydantic import BaseModel, Field

from agentloom_blocks.sdk import Block, BlockContext, BlockError, BlockExample


class Comparison(enum.StrEnum):
    EQUAL = "=="
    NOT_EQUAL = "!="
    GREATER = ">"
    LESS = "<"
    GREATER_OR_EQUAL = ">="
    LESS_OR_EQUAL = "<="
    CONTAINS = "contains"
    NOT_CONTAINS = "not contains"
    STARTS_WITH = "starts with"
    ENDS_WITH = "ends with"


_ORDERINGS: dict[Comparison, Callable[[Any, Any], bool]] = {
    Comparison.GREATER: operator.gt,
    Comparison.LESS: operator.lt,
    Comparison.GREATER_OR_EQUAL: operator.ge,
    Comparison.LESS_OR_EQUAL: operator.le,
}


def as_number(value: Any) -> float | None:
    """A number for numbers and numeric text ("3", " 2.5 "); None for anything else."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            number = float(value.strip())
        except ValueError:
            return None
        return number if math.isfinite(number) else None
    return None


def loosely_equal(left: Any, right: Any) -> bool:
    """Equal as numbers when both are numeric ("3" == 3.0), else equal as values."""
    a, b = as_number(left), as_number(right)
    if a is not None and b is not None:
        return a == b
    return bool(left == right)


def compare(left: Any, op: Comparison, right: Any) -> bool:
    """`left op right`: numbers (and numeric text) as numbers, text as text."""
    if op is Comparison.EQUAL:
        return loosely_equal(left, right)
    if op is Comparison.NOT_EQUAL:
        return not loosely_equal(left, right)
    if op in _ORDERINGS:
        a, b = as_number(left), as_number(right)
        if a is not None and b is not None:
            return _ORDERINGS[op](a, b)
        if isinstance(left, str) and isinstance(right, str):
            return _ORDERINGS[op](left, right)
        raise BlockError(f"cannot compare {left!r} {op.value} {right!r}: not numbers nor texts")
    if op in (Comparison.CONTAINS, Comparison.NOT_CONTAINS):
        if isinstance(left, str):
            found = str(right) in left
        elif isinstance(left, list | dict | tuple):
            found = right in left
        else:
            raise BlockError(f"{op.value!r} needs a text, a list or a dict on the left")
        return found if op is Comparison.CONTAINS else not found
    if not isinstance(left, str):
        raise BlockError(f"{op.value!r} needs a text on the left")
    if op is Comparison.STARTS_WITH:
        return left.startswith(str(right))
    return left.endswith(str(right))


class ConditionBlock(Block):
    id = "condition_block"
    inline = True
    name = "Condition"
    description = (
        "Compares `value1` with `value2` (numbers and numeric text as numbers, else as text) "
        "and yields the answer on `result`, then fires only one branch: `yes_output` "
        "(`yes_value`, or value1 when empty) or `no_output` (`no_value`, or value2 when empty)."
    )
    categories = ("flow", "logic")
    cost_per_run = 0

    class Input(BaseModel):
        value1: Any = Field(title="Value 1", description="The value on the left.")
        operator: Comparison = Field(
            default=Comparison.EQUAL, title="Operator", description="How to compare."
        )
        value2: Any = Field(title="Value 2", description="The value on the right.")
        yes_value: Any = Field(
            default=None,
            title="Yes value",
            description="What `yes_output` yields when true (value1 when empty).",
        )
        no_value: Any = Field(
            default=None,
            title="No value",
            description="What `no_output` yields when false (value2 when empty).",
        )

    class Output(BaseModel):
        result: bool = Field(title="Result", description="Whether the comparison holds.")
        yes_output: Any = Field(title="Yes output", description="Fires only when true.")
        no_output: Any = Field(title="No output", description="Fires only when false.")

    examples = (
        BlockExample(
            input={"value1": 10, "operator": ">", "value2": "9.5", "yes_value": "big"},
            outputs=[("result", True), ("yes_output", "big")],
        ),
        BlockExample(
            input={"value1": "apple", "operator": "==", "value2": "pear"},
            outputs=[("result", False), ("no_output", "pear")],
        ),
        BlockExample(
            input={"value1": "hello world", "operator": "contains", "value2": "world"},
            outputs=[("result", True), ("yes_output", "hello world")],
        ),
        BlockExample(
            input={"value1": [1, 2], "operator": "<", "value2": 3},
            outputs=[("error", "cannot compare [1, 2] < 3: not numbers nor texts")],
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        result = compare(input.value1, input.operator, input.value2)
        yield "result", result
        if result:
            yield "yes_output", input.value1 if input.yes_value is None else input.yes_value
        else:
            yield "no_output", input.value2 if input.no_value is None else input.no_value


class IfInputMatchesBlock(Block):
    id = "if_input_matches_block"
    inline = True
    name = "If input matches"
    description = (
        "Checks whether `input` equals `value` (numbers and numeric text compare as numbers) "
        "and yields `result`, then only `yes_output` or only `no_output`."
    )
    categories = ("flow", "logic")
    cost_per_run = 0

    class Input(BaseModel):
        input: Any = Field(title="Input", description="The value to check.")
        value: Any = Field(title="Value", description="The value to match.")
        yes_value: Any = Field(
            default=None,
            title="Yes value",
            description="What `yes_output` yields on a match (the input when empty).",
        )
        no_value: Any = Field(
            default=None,
            title="No value",
            description="What `no_output` yields otherwise (the input when empty).",
        )

    class Output(BaseModel):
        result: bool = Field(title="Result", description="Whether the input matches.")
        yes_output: Any = Field(title="Yes output", description="Fires only on a match.")
        no_output: Any = Field(title="No output", description="Fires only when not matching.")

    examples = (
        BlockExample(
            input={"input": "3", "value": 3, "yes_value": "three"},
            outputs=[("result", True), ("yes_output", "three")],
        ),
        BlockExample(
            input={"input": "red", "value": "blue"},
            outputs=[("result", False), ("no_output", "red")],
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        matches = loosely_equal(input.input, input.value)
        yield "result", matches
        if matches:
            yield "yes_output", input.input if input.yes_value is None else input.yes_value
        else:
            yield "no_output", input.input if input.no_value is None else input.no_value
