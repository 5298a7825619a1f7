"""Bus messages between the executions API, the scheduler and the runners.

Defined once here and shared by producer and consumer. Each carries the versioned envelope;
ids only: the state they refer to is in PostgreSQL, so a redelivered or late message is
harmless (its effect is applied once, by compare-and-set on that state).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, TypeAdapter

from agentloom_common.messages import Envelope


class ExecutionRequested(Envelope):
    """An accepted execution waits for its scheduler partition to start it."""

    type: Literal["execution.requested"] = "execution.requested"
    execution_id: str


class NodeJob(Envelope):
    """A node execution is QUEUED: any runner may claim and run it."""

    type: Literal["node.job"] = "node.job"
    execution_id: str
    node_execution_id: str
    # The node's block, when the sender knew it: a runner claims, runs and finishes the
    # job of an inline block in one transaction. Optional: the claim decides, not this.
    block_id: str | None = None


class NodeFinished(Envelope):
    """A node execution reached COMPLETED or FAILED; its outputs are stored."""

    type: Literal["node.finished"] = "node.finished"
    execution_id: str
    node_execution_id: str


class CancelExecution(Envelope):
    """Broadcast to every runner: interrupt the execution's running blocks."""

    type: Literal["execution.cancel"] = "execution.cancel"
    execution_id: str


SchedulerMessage = Annotated[ExecutionRequested | NodeFinished, Field(discriminator="type")]
scheduler_message = TypeAdapter[ExecutionRequested | NodeFinished](SchedulerMessage)
