"""/api/blocks: the block catalog."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path

from agentloom.blocks.v1 import blocks_pb2
from agentloom_gateway import convert, schemas
from agentloom_gateway.access import requires
from agentloom_gateway.deps import ServicesDep
from agentloom_gateway.errors import problem_responses

router = APIRouter(prefix="/blocks", tags=["blocks"])

# Block ids are readable snake_case; anything else names no block (404, not 422).
BlockId = Annotated[str, Path(pattern=r"^[A-Za-z0-9_.-]{1,128}$", description="Block id.")]


@router.get(
    "",
    summary="List the available blocks",
    responses=problem_responses(403),
    dependencies=[requires("blocks:read")],
)
async def list_blocks(services: ServicesDep) -> list[schemas.Block]:
    reply: blocks_pb2.ListBlocksResponse = await services.blocks.ListBlocks(
        blocks_pb2.ListBlocksRequest()
    )
    return [convert.block(block) for block in reply.blocks]


@router.get(
    "/{block_id}",
    summary="Get a block",
    responses=problem_responses(403, 404),
    dependencies=[requires("blocks:read")],
)
async def get_block(block_id: BlockId, services: ServicesDep) -> schemas.Block:
    reply: blocks_pb2.GetBlockResponse = await services.blocks.GetBlock(
        blocks_pb2.GetBlockRequest(block_id=block_id)
    )
    return convert.block(reply.block)
