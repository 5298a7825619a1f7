"""Arithmetic on two numbers, without evaluating any expression text."""

from __future__ import annotations

import enum
import math
from collections.abc import AsyncIterator
from typing import Any

from pydantic import BaseModel, Field

from agentloom_blocks.sdk import Block, BlockContext, BlockError, BlockExample

# Bounds what one power can cost: 10**(10**9) would stall the runner for minutes.
MAX_RESULT_DIGITS = 10_000


class Operation(enum.StrEnum):
    ADD = "add"
    SUBTRACT = "subtract"
    MULTIPLY = "multiply"
    DIVIDE = "divide"
    FLOOR_DIVIDE = "floor_divide"
    MODULO = "modulo"
    POWER = "power"
    MIN = "min"
    MAX = "max"


def calculate(operation: Operation, a: float, b: float) -> float:
    if operation in (Operation.DIVIDE, Operation.FLOOR_DIVIDE, Operation.MODULO) and b == 0:
        raise BlockError("division by zero")
    if operation is Operation.POWER:
        if a not in (0, 1, -1) and abs(b) * math.log10(max(abs(a), 1e-300)) > MAX_RESULT_DIGITS:
            raise BlockError(f"the result would have more than {MAX_RESULT_DIGITS} digits")
        try:
            result: float = a**b
        except (OverflowError, ZeroDivisionError) as exc:
            raise BlockError(f"cannot compute {a} ** {b}: {exc}") from None
        if isinstance(result, complex):
            raise BlockError(f"{a} ** {b} is not a real number")
        return result
    results = {
        Operation.ADD: lambda: a + b,
        Operation.SUBTRACT: lambda: a - b,
        Operation.MULTIPLY: lambda: a * b,
        Operation.DIVIDE: lambda: a / b,
        Operation.FLOOR_DIVIDE: lambda: a // b,
        Operation.MODULO: lambda: a % b,
        Operation.MIN: lambda: min(a, b),
        Operation.MAX: lambda: max(a, b),
    }
    return results[operation]()


class CalculatorBlock(Block):
    id = "calculator_block"
    name = "Calculator"
    description = (
        "Computes `a` (operation) `b`: add, subtract, multiply, divide, floor_divide, modulo, "
        "power, min, max. Whole results are integers; `round_to` rounds to that many decimals."
    )
    categories = ("data", "logic")
    cost_per_run = 0

    class Input(BaseModel):
        operation: Operation = Field(
            default=Operation.ADD, title="Operation", description="What to compute."
        )
        a: int | float = Field(title="A", description="The first number.")
        b: int | float = Field(title="B", description="The second number.")
        round_to: int | None = Field(
            default=None, ge=0, le=15, title="Round to", description="Decimals to keep."
        )

    class Output(BaseModel):
        result: int | float = Field(title="Result", description="The result.")

    examples = (
        BlockExample(input={"operation": "add", "a": 2, "b": 3}, outputs=[("result", 5)]),
        BlockExample(
            input={"operation": "divide", "a": 10, "b": 3, "round_to": 2},
            outputs=[("result", 3.33)],
        ),
        BlockExample(input={"operation": "power", "a": 2, "b": 10}, outputs=[("result", 1024)]),
        BlockExample(
            input={"operation": "modulo", "a": 1, "b": 0}, outputs=[("error", "division by zero")]
        ),
    )

    async def run(self, input: Input, context: BlockContext) -> AsyncIterator[tuple[str, Any]]:
        result = calculate(input.operation, input.a, input.b)
        if input.round_to is not None:
            result = round(result, input.round_to)
        if isinstance(result, float) and not math.isfinite(result):
            raise BlockError("the result is not a finite number")
        if isinstance(result, float) and result.is_integer() and abs(result) < 2**53:
            yield "result", int(result)
        else:
            yield "result", result
