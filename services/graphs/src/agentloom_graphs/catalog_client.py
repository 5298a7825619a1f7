"""The block catalog, fetched from the blocks service and kept for a short while.

The catalog only changes when the blocks service is redeployed, so a recent copy is good
enough to validate graphs against: it is refreshed after `ttl_s`, and while the blocks
service is unreachable the last copy keeps serving for up to `max_stale_s`.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import grpc

from agentloom.blocks.v1 import blocks_pb2, blocks_pb2_grpc
from agentloom_common.errors import Unavailable
from agentloom_graphs.block_specs import BlockSpec, Catalog

log = logging.getLogger(__name__)

# After a failed refresh, wait this long (at most) before asking the blocks service again.
RETRY_AFTER_FAILURE_S = 5.0


class CatalogClient:
    def __init__(
        self,
        channel: grpc.aio.Channel,
        *,
        ttl_s: float,
        max_stale_s: float,
        deadline_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._stub = blocks_pb2_grpc.BlocksServiceStub(channel)
        self._ttl_s = ttl_s
        self._max_stale_s = max_stale_s
        self._deadline_s = deadline_s
        self._clock = clock
        self._lock = asyncio.Lock()
        self._catalog: Catalog | None = None
        self._fresh_until = 0.0
        self._usable_until = 0.0

    async def get(self) -> Catalog:
        """The catalog by block id; raises `Unavailable` when there is no usable copy."""
        if self._catalog is not None and self._clock() < self._fresh_until:
            return self._catalog
        async with self._lock:  # one refresh at a time; the others wait and reuse it
            now = self._clock()
            if self._catalog is not None and now < self._fresh_until:
                return self._catalog
            try:
                response = await self._stub.ListBlocks(
                    blocks_pb2.ListBlocksRequest(), timeout=self._deadline_s
                )
            except grpc.aio.AioRpcError as error:
                return self._fall_back(now, error)
            self._catalog = _parse(response)
            self._fresh_until = now + self._ttl_s
            self._usable_until = now + self._max_stale_s
            return self._catalog

    def _fall_back(self, now: float, error: grpc.aio.AioRpcError) -> Catalog:
        if self._catalog is None or now >= self._usable_until:
            log.warning("block catalog unavailable: %s", error.code())
            raise Unavailable(
                "the block catalog is unavailable, try again shortly",
                reason="BLOCK_CATALOG_UNAVAILABLE",
            ) from error
        log.warning("block catalog refresh failed (%s); using the last copy", error.code())
        self._fresh_until = now + min(self._ttl_s, RETRY_AFTER_FAILURE_S)
        return self._catalog


def _parse(response: blocks_pb2.ListBlocksResponse) -> Catalog:
    specs: dict[str, BlockSpec] = {}
    for block in response.blocks:
        try:
            specs[block.id] = BlockSpec.from_proto(block)
        except ValueError:
            # One broken catalog entry must not stop graphs using other blocks.
            log.exception("block %r has unreadable schemas; treated as unknown", block.id)
    return specs
