"""Graph changes announced on the bus, for the services that hold graph versions.

The executions API keeps the versions it ran and runs them again without asking this service
while nothing changed (issue 8: the question was a gRPC hop and a read per execution). So
every change that moves what `GetGraph` answers for a graph (a new version, another active
version, the graph deleted) is announced after its commit and before the call answers:
anyone who learns of the change from this service's answer asks the executions API later
than the announcement reached the broker.

An announcement that cannot be made (the broker is away) is logged and not retried: the
listeners trust what they hold only for a few seconds without hearing from the bus, and
not at all while disconnected from it.
"""

from __future__ import annotations

import asyncio
import logging

from agentloom_common.bus import GRAPHS_EXCHANGE, Publisher
from agentloom_common.messages import GraphChanged

log = logging.getLogger(__name__)


class GraphChanges:
    def __init__(self, publisher: Publisher, *, timeout_s: float) -> None:
        self._publisher = publisher
        self._timeout_s = timeout_s

    async def announce(self, user_id: str, graph_id: str) -> None:
        message = GraphChanged(user_id=user_id, graph_id=graph_id)
        try:
            async with asyncio.timeout(self._timeout_s):
                # Not mandatory: no listener bound (no executions API running) is not an error.
                await self._publisher.publish(
                    GRAPHS_EXCHANGE,
                    "",
                    message.model_dump_json().encode(),
                    message_id=message.message_id,
                    mandatory=False,
                )
        except Exception as error:  # the change is committed: the caller's answer stands
            log.warning(
                "could not announce a change of graph %s (%s): listeners re-check it within "
                "their trust window",
                graph_id,
                type(error).__name__,
            )
