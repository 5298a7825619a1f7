"""The graph versions the executions API runs, held between runs.

A version never changes, but which one is active does, and a graph can be deleted. Asking
the graphs service on every run (a gRPC hop and a read: ~2.5 ms of a lone 10-node
execution's ~20 ms, and ~9% of the platform's CPU per execution under load; issue 8) is
what this saves: the graphs service announces every change on the bus
(`agentloom_graphs.changes`, after the commit and before its call answers), and a version
held is run again without asking while

- this process is connected to the bus (a change announced meanwhile would be missed: on
  reconnecting, everything held is asked about again), and
- no change of that graph was heard since it was asked about, and
- it was asked about less than `trust_s` ago (in case an announcement could not be made).

A question in flight when a change is heard is not trusted afterwards (it may have been
answered before the change). When not trusted, the service is asked with the version held
(`known_version`): a small read, and no graph sent back while it is still the one.
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from functools import partial
from typing import Any

from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from pydantic import ValidationError

from agentloom.graphs.v1 import graphs_pb2, graphs_pb2_grpc
from agentloom_common.bus import GRAPHS_EXCHANGE
from agentloom_common.messages import GraphChanged
from agentloom_executor.graph import GraphSnapshot, graph_json

log = logging.getLogger(__name__)

# By (user, graph id, version asked for: 0 for the active one).
Key = tuple[str, str, int]


@dataclass(frozen=True)
class GraphVersion:
    """A graph version as the executions API runs it: the snapshot an execution keeps, and
    the same parsed."""

    id: str
    version: int
    snapshot_json: dict[str, Any]
    snapshot: GraphSnapshot


class GraphVersions:
    def __init__(
        self, graphs: graphs_pb2_grpc.GraphsServiceStub, *, size: int = 256, trust_s: float = 5.0
    ) -> None:
        self._graphs = graphs
        self._size = size
        self._trust_s = trust_s
        self._held: OrderedDict[Key, GraphVersion] = OrderedDict()
        # Held versions run without asking, until this monotonic time.
        self._trusted: dict[Key, float] = {}
        # Changes heard (and reconnections): a question asked before one is not trusted.
        self._changes = 0
        self._connection: AbstractRobustConnection | None = None
        # Questions on their way, and the changes heard when each was asked.
        self._asking: dict[Key, tuple[asyncio.Future[GraphVersion], int]] = {}
        # Questions asked of the graphs service (tests and metrics read it).
        self.asked = 0

    async def listen(self, connection: AbstractRobustConnection) -> None:
        """Hear the graphs service's announcements, on a queue of this process's own."""
        channel = await connection.channel()
        # Named by us: a robust channel re-declares it (and its consumer) after a reconnect.
        queue = await channel.declare_queue(
            f"{GRAPHS_EXCHANGE}.{uuid.uuid4().hex}", exclusive=True, auto_delete=True
        )
        await queue.bind(GRAPHS_EXCHANGE)
        await queue.consume(self._heard, no_ack=True)
        connection.reconnect_callbacks.add(self._reconnected)
        self._connection = connection

    async def get(self, user_id: str, graph_id: str, version: int) -> GraphVersion:
        """The version asked for (0: the active one); the graphs service's errors.

        Callers wanting a version that is not trusted share one question: the first
        executions of a new graph at 100/s (bench W4) each asked, and each parsed the
        answer, while the first question was on its way. A caller joins a question only
        if no change was heard since it was asked (its answer may predate the change)."""
        key = (user_id, graph_id, version)
        held = self._held.get(key)
        if held is not None and self._listening() and self._trusted.get(key, 0) > time.monotonic():
            self._held.move_to_end(key)
            return held
        asking = self._asking.get(key)
        if asking is None or asking[1] != self._changes:
            self.asked += 1
            question = asyncio.ensure_future(self._ask(key, held, self._changes))
            asking = (question, self._changes)
            self._asking[key] = asking
            question.add_done_callback(partial(self._answered, key, asking))
        # Shielded: a caller that gives up does not cancel the others' question.
        return await asyncio.shield(asking[0])

    def _answered(
        self, key: Key, asking: tuple[asyncio.Future[GraphVersion], int], _: object
    ) -> None:
        if self._asking.get(key) is asking:
            del self._asking[key]
        question = asking[0]
        if not question.cancelled():
            question.exception()  # retrieved: every caller may have given up

    async def _ask(self, key: Key, held: GraphVersion | None, changes: int) -> GraphVersion:
        """Ask the graphs service; `changes` is how many were heard when it was asked."""
        user_id, graph_id, version = key
        reply: graphs_pb2.GetGraphResponse = await self._graphs.GetGraph(
            graphs_pb2.GetGraphRequest(
                user_id=user_id,
                graph_id=graph_id,
                version=version,
                known_version=held.version if held is not None else 0,
            )
        )
        if held is not None and reply.unchanged and reply.graph.version == held.version:
            found = held
            self._held.move_to_end(key)
        else:
            snapshot_json = graph_json(reply.graph)
            found = GraphVersion(
                id=reply.graph.id,
                version=reply.graph.version,
                snapshot_json=snapshot_json,
                snapshot=GraphSnapshot.from_json(snapshot_json),
            )
            self._held[key] = found
            while len(self._held) > self._size:
                evicted, _ = self._held.popitem(last=False)
                self._trusted.pop(evicted, None)
        if self._listening() and changes == self._changes:
            self._trusted[key] = time.monotonic() + self._trust_s
        return found

    def forget(self, graph_id: str) -> None:
        """A change of `graph_id` was heard: ask about it before running it again."""
        self._changes += 1
        for key in [key for key in self._trusted if key[1] == graph_id]:
            del self._trusted[key]

    def _listening(self) -> bool:
        return self._connection is not None and self._connection.connected.is_set()

    async def _heard(self, message: AbstractIncomingMessage) -> None:
        try:
            changed = GraphChanged.model_validate_json(message.body)
        except ValidationError:
            log.warning("not a graph change on %s: trusting no graph held", GRAPHS_EXCHANGE)
            self._forget_all()
            return
        self.forget(changed.graph_id)

    def _reconnected(self, *_: object) -> None:
        # Announcements made while disconnected were lost.
        self._forget_all()

    def _forget_all(self) -> None:
        self._changes += 1
        self._trusted.clear()
