"""The runner: claims node jobs, runs the block, charges it, stores its outputs.

Order per job: claim (QUEUED -> RUNNING, new attempt) -> run the block -> charge
(idempotent, keyed by node execution id) -> store outputs and `node.finished` in one
transaction -> ack. Every runner also hears every cancel (a fanout) and interrupts the
blocks of that execution it is running.
"""

from __future__ import annotations

import asyncio
import logging
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import grpc
from aio_pika.abc import AbstractIncomingMessage, AbstractRobustConnection
from pydantic import ValidationError
from pydantic_core import to_jsonable_python
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentloom.billing.v1 import billing_pb2, billing_pb2_grpc
from agentloom_blocks.sdk import ERROR_PIN, Block, BlockContext, BlockError, PlatformConfig
from agentloom_common.bus import CONTROL_EXCHANGE, JOBS_QUEUE, PoisonMessage, Topology, consume
from agentloom_common.errors import error_info
from agentloom_executor import repository
from agentloom_executor.messages import CancelExecution, NodeJob
from agentloom_executor.outbox import Outbox
from agentloom_executor.status import Status

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    status: Status
    outputs: list[list[Any]]
    error: str | None


class Runner:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        blocks: Mapping[str, type[Block]],
        topology: Topology,
        billing: billing_pb2_grpc.BillingServiceStub,
        *,
        config: PlatformConfig,
        node_timeout_s: float,
    ) -> None:
        self._sessions = session_factory
        self._outbox = outbox
        self._blocks = blocks
        self._topology = topology
        self._billing = billing
        self._config = config
        self._node_timeout_s = node_timeout_s
        self._running: defaultdict[str, set[asyncio.Task[Outcome]]] = defaultdict(set)

    async def start(self, connection: AbstractRobustConnection, concurrency: int) -> None:
        jobs = await connection.channel()
        await jobs.set_qos(prefetch_count=concurrency)
        await consume(jobs, JOBS_QUEUE, self.handle_job)
        control = await connection.channel()
        queue = await control.declare_queue(exclusive=True, auto_delete=True)
        await queue.bind(CONTROL_EXCHANGE)
        await queue.consume(self.handle_control, no_ack=True)

    async def handle_control(self, message: AbstractIncomingMessage) -> None:
        try:
            cancel = CancelExecution.model_validate_json(message.body)
        except ValidationError:
            log.error("malformed control message dropped")
            return
        for task in list(self._running.get(cancel.execution_id, ())):
            task.cancel()

    async def handle_job(self, message: AbstractIncomingMessage) -> None:
        try:
            job = NodeJob.model_validate_json(message.body)
        except ValidationError as error:
            raise PoisonMessage(f"not a node job: {error.error_count()} errors") from None
        async with self._sessions.begin() as session:
            claim = await repository.claim_node(
                session, job.node_execution_id, redelivered=bool(message.redelivered)
            )
        if claim is None:
            return  # finished, cancelled, or being run by another runner: nothing to do
        block = self._blocks.get(claim.block_id)
        cost = 0
        if block is None:
            missing = f"block {claim.block_id!r} is not installed"
            outcome = Outcome(Status.FAILED, [[ERROR_PIN, missing]], missing)
        else:
            outcome = await self._run_interruptible(block, claim)
            if outcome.status is Status.CANCELLED:
                return
            if outcome.status is Status.COMPLETED and block.cost_per_run:
                outcome, cost = await self._charge(claim, block, outcome, block.cost_per_run)
        async with self._sessions.begin() as session:
            row = await repository.finish_node(
                session,
                claim,
                self._topology,
                status=outcome.status,
                outputs=outcome.outputs,
                error=outcome.error,
                cost=cost,
            )
        if row is not None:
            await self._outbox.flush([row])

    async def _run_interruptible(
        self, block: type[Block], claim: repository.ClaimedNode
    ) -> Outcome:
        execution_id = str(claim.execution_id)
        task = asyncio.create_task(self._run(block, claim))
        self._running[execution_id].add(task)
        try:
            return await asyncio.wait_for(task, self._node_timeout_s)
        except TimeoutError:
            message = f"timed out after {self._node_timeout_s:g}s"
            return Outcome(Status.FAILED, [[ERROR_PIN, message]], message)
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if task.cancelled() and current is not None and current.cancelling() == 0:
                return Outcome(Status.CANCELLED, [], "cancelled")
            raise
        finally:
            tasks = self._running[execution_id]
            tasks.discard(task)
            if not tasks:
                del self._running[execution_id]

    async def _run(self, block: type[Block], claim: repository.ClaimedNode) -> Outcome:
        try:
            block_input = block.Input.model_validate(claim.inputs)
        except ValidationError as error:
            problems = "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'input'}: {e['msg']}"
                for e in error.errors()
            )
            message = f"invalid input: {problems}"
            return Outcome(Status.FAILED, [[ERROR_PIN, message]], message)
        context = BlockContext(
            user_id=claim.user_id,
            graph_id=claim.graph_id,
            execution_id=str(claim.execution_id),
            node_id=claim.node_id,
            node_execution_id=str(claim.node_execution_id),
            config=self._config,
            logger=logging.getLogger(f"agentloom.block.{block.id}"),
        )
        outputs: list[list[Any]] = []
        try:
            async for pin, value in block().run(block_input, context):
                outputs.append([pin, to_jsonable_python(value, fallback=str)])
        except BlockError as error:
            outputs.append([ERROR_PIN, str(error)])
            return Outcome(Status.FAILED, outputs, str(error))
        except Exception as error:  # a bug in the block: the node fails, the runner goes on
            log.exception("block %s raised", block.id)
            message = f"{type(error).__name__}: {error}"
            outputs.append([ERROR_PIN, message])
            return Outcome(Status.FAILED, outputs, message)
        return Outcome(Status.COMPLETED, outputs, None)

    async def _charge(
        self, claim: repository.ClaimedNode, block: type[Block], outcome: Outcome, cost: int
    ) -> tuple[Outcome, int]:
        request = billing_pb2.ChargeRequest(
            user_id=claim.user_id,
            idempotency_key=str(claim.node_execution_id),
            amount=cost,
            graph_id=claim.graph_id,
            execution_id=str(claim.execution_id),
            node_id=claim.node_id,
            block_id=block.id,
        )
        try:
            await self._billing.Charge(request)
        except grpc.aio.AioRpcError as error:
            reason, _ = error_info(error)
            if reason != "INSUFFICIENT_CREDITS":
                raise  # billing unreachable: the job is requeued and charged on the next try
            message = "insufficient credits"
            return Outcome(Status.FAILED, [[ERROR_PIN, message]], message), 0
        return outcome, cost
