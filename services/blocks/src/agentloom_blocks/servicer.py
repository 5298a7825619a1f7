"""gRPC translation for the block catalog."""

from __future__ import annotations

import grpc

from agentloom.blocks.v1 import blocks_pb2, blocks_pb2_grpc
from agentloom_blocks.catalog import to_proto
from agentloom_blocks.sdk import Block
from agentloom_common.errors import NotFound


class BlocksServicer(blocks_pb2_grpc.BlocksServiceServicer):
    def __init__(self, blocks: dict[str, type[Block]]) -> None:
        self._protos = {block_id: to_proto(block) for block_id, block in blocks.items()}

    async def ListBlocks(
        self, request: blocks_pb2.ListBlocksRequest, context: grpc.aio.ServicerContext
    ) -> blocks_pb2.ListBlocksResponse:
        return blocks_pb2.ListBlocksResponse(blocks=list(self._protos.values()))

    async def GetBlock(
        self, request: blocks_pb2.GetBlockRequest, context: grpc.aio.ServicerContext
    ) -> blocks_pb2.GetBlockResponse:
        block = self._protos.get(request.block_id)
        if block is None:
            raise NotFound(f"block {request.block_id!r} does not exist", reason="BLOCK_NOT_FOUND")
        return blocks_pb2.GetBlockResponse(block=block)
