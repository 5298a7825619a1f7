"""The block catalog as the blocks service publishes it."""

from __future__ import annotations

import json

from agentloom.blocks.v1 import blocks_pb2
from agentloom_blocks.sdk import Block, BlockKind

_KINDS = {
    BlockKind.STANDARD: blocks_pb2.BLOCK_KIND_STANDARD,
    BlockKind.INPUT: blocks_pb2.BLOCK_KIND_INPUT,
    BlockKind.OUTPUT: blocks_pb2.BLOCK_KIND_OUTPUT,
    BlockKind.NOTE: blocks_pb2.BLOCK_KIND_NOTE,
}


def to_proto(block: type[Block]) -> blocks_pb2.Block:
    return blocks_pb2.Block(
        id=block.id,
        name=block.name,
        description=block.description,
        categories=list(block.categories),
        input_schema_json=json.dumps(block.input_schema()),
        output_schema_json=json.dumps(block.output_schema()),
        kind=_KINDS[block.kind],
        cost_per_run=block.cost_per_run,
        accepts_extra_inputs=block.accepts_extra_inputs,
    )
