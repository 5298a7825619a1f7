"""Every block's every example, run for real: the yielded outputs are the example's outputs.

A failing run counts as one last output on the `error` pin, as the runner reports it; so an
example expecting a failure ends with ("error", message).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest
from jsonschema import Draft202012Validator

from agentloom_blocks.registry import load_blocks
from agentloom_blocks.sdk import (
    ERROR_PIN,
    EXAMPLE_SERVER_URL,
    Block,
    BlockContext,
    BlockError,
    BlockExample,
)
from agentloom_devkit.fake_web import FakeWeb

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


def served_by(value: Any, base_url: str) -> Any:
    """`value` with the examples' placeholder server URL replaced by the local server's."""
    if isinstance(value, str):
        return value.replace(EXAMPLE_SERVER_URL, base_url)
    if isinstance(value, list | tuple):
        return type(value)(served_by(item, base_url) for item in value)
    if isinstance(value, dict):
        return {key: served_by(item, base_url) for key, item in value.items()}
    return value


@pytest.mark.parametrize(("block", "example"), EXAMPLES)
async def test_block_example(
    block: type[Block], example: BlockExample, context: BlockContext, fake_web: FakeWeb
) -> None:
    # The examples' web server is local: the operator setting allowing private targets is on.
    config = dataclasses.replace(context.config, allow_private_network=True)
    context = dataclasses.replace(context, config=config)

    outputs = await run_block(block, served_by(example.input, fake_web.url), context)

    assert outputs == served_by(example.outputs, fake_web.url)
    output_schema = block.output_schema()
    for pin, value in outputs:
        pin_schema = {"$defs": output_schema.get("$defs", {}), **output_schema["properties"][pin]}
        Draft202012Validator(pin_schema).validate(value)
