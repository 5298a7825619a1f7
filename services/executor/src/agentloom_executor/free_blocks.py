"""Which blocks cost nothing to run, as billing prices them: their runs need no charge call.

Billing's cost table is the authority. A block with no per-run, per-byte or per-second rate
prices 0 unless it reports LLM tokens, and a charge of 0 records and refuses nothing, so
the runner skips the call for such a run (a gRPC hop less per node). The list is asked of
billing again every `ttl_s`; if billing cannot answer, every run is charged as usual.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable

import grpc

from agentloom.billing.v1 import billing_pb2, billing_pb2_grpc

log = logging.getLogger(__name__)


class FreeBlocks:
    def __init__(
        self,
        billing: billing_pb2_grpc.BillingServiceStub,
        block_ids: Iterable[str],
        *,
        ttl_s: float = 30.0,
    ) -> None:
        self._billing = billing
        self._block_ids = sorted(block_ids)
        self._ttl_s = ttl_s
        self._free: frozenset[str] = frozenset()
        self._expires = 0.0
        self._lock = asyncio.Lock()

    async def contains(self, block_id: str) -> bool:
        return block_id in await self.current()

    async def current(self) -> frozenset[str]:
        """The ids of the blocks that cost nothing, as billing last said."""
        if time.monotonic() >= self._expires:
            async with self._lock:
                if time.monotonic() >= self._expires:
                    await self._refresh()
        return self._free

    async def _refresh(self) -> None:
        try:
            reply = await self._billing.ListFreeBlocks(
                billing_pb2.ListFreeBlocksRequest(block_ids=self._block_ids), timeout=2
            )
            self._free = frozenset(reply.block_ids)
            self._expires = time.monotonic() + self._ttl_s
        except grpc.aio.AioRpcError as error:
            # Charge everything meanwhile; ask again shortly.
            log.warning("billing did not list free blocks: %s", error.code().name)
            self._free = frozenset()
            self._expires = time.monotonic() + min(self._ttl_s, 2.0)
