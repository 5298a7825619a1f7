"""Every block's every example, run for real: the yielded outputs are the example's outputs.

A failing run counts as one last output on the `error` pin, as the runner reports it; so an
example expecting a failure ends with ("error", message).
"""

from __future__ import annotations

from typing import Any

import pytest
from jsonschema import Draft202012Validator

from agentloom_blocks.registry import load_blocks
from agentloom_blocks.sdk import ERROR_PIN, Block, BlockContext, BlockError, BlockExample

EXAMPLES = [
    pytest.param(block, example, id=f"{block_id}-{index}")
    for block_id, block in load_blocks().items()
    for index, example in enumerate(block.examples)
]


async def run_block(
    block: type[Block], input_data: dict[str, Any], context: BlockContext
) -> list[tuple[str, Any]]:
    outputs: list[tuple[str, Any]] = []
    try:
        async for pin, value in block().run(block.Input(**input_data), context):
            outputs.append((pin, value))
    except BlockError as exc:
        outputs.append((ERROR_PIN, str(exc)))
    return outputs


@pytest.mark.parametrize(("block", "example"), EXAMPLES)
async def test_block_example(
    block: type[Block], example: BlockExample, context: BlockContext
) -> None:
    outputs = await run_block(block, example.input, context)

    assert outputs == example.outputs
    output_schema = block.output_schema()
    for pin, value in outputs:
        pin_schema = {"$defs": output_schema.get("$defs", {}), **output_schema["properties"][pin]}
        Draft202012Validator(pin_schema).validate(value)
