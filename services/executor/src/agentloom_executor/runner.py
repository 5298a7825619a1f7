"""The runner: claims node jobs, runs the block, charges it, stores its outputs.

Order per job: claim (QUEUED -> RUNNING, new attempt, lease) -> run the block (lease kept
alive by heartbeats) -> charge (idempotent, keyed by node execution id) -> store outputs and
pass them along the graph in one transaction, running there the inline nodes they queue
(and claiming the next one to run) -> ack. A retryable failure goes back to QUEUED with a
retry time instead. Every runner also hears every cancel (a fanout) and interrupts the
blocks of that execution it is running. On SIGTERM it stops taking jobs, lets running
blocks finish within the grace period, and hands the rest back (G10).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import grpc
from aio_pika.abc import (
    AbstractChannel,
    AbstractIncomingMessage,
    AbstractQueue,
    AbstractRobustConnection,
)
from pydantic import ValidationError
from pydantic_core import to_jsonable_python
from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentloom.billing.v1 import billing_pb2, billing_pb2_grpc
from agentloom.graphs.v1 import graphs_pb2, graphs_pb2_grpc
from agentloom.identity.v1 import credentials_pb2, credentials_pb2_grpc
from agentloom_blocks.sdk import (
    ERROR_PIN,
    Block,
    BlockContext,
    BlockError,
    PlatformConfig,
    RetryableBlockError,
    ToolError,
)
from agentloom_common.bus import CONTROL_EXCHANGE, JOBS_QUEUE, PoisonMessage, Topology, consume
from agentloom_common.errors import error_info
from agentloom_executor import repository, scheduling, tools
from agentloom_executor.free_blocks import FreeBlocks
from agentloom_executor.graph import GraphCache, GraphSnapshot, graph_json, input_problems
from agentloom_executor.messages import CancelExecution, NodeJob
from agentloom_executor.outbox import Outbox
from agentloom_executor.retry import RetryPolicy
from agentloom_executor.status import Status
from agentloom_executor.tables import Execution, NodeExecution, OutboxMessage
from agentloom_executor.user_values import UserValues

log = logging.getLogger(__name__)


@dataclass
class Outcome:
    status: Status
    outputs: list[list[Any]]
    error: str | None
    retryable: bool = False
    duration_ms: int = 0


@dataclass(frozen=True)
class RunnerOptions:
    node_timeout_s: float
    lease_s: float
    retry: RetryPolicy
    max_depth: int = 5
    limits: scheduling.Limits = field(default_factory=scheduling.Limits)


class Runner:
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        blocks: Mapping[str, type[Block]],
        topology: Topology,
        billing: billing_pb2_grpc.BillingServiceStub,
        graphs: graphs_pb2_grpc.GraphsServiceStub,
        credentials: credentials_pb2_grpc.CredentialsServiceStub,
        *,
        config: PlatformConfig,
        options: RunnerOptions,
    ) -> None:
        self._sessions = session_factory
        self._outbox = outbox
        self._blocks = blocks
        self._topology = topology
        self._billing = billing
        self._graphs = graphs
        self._credentials = credentials
        self._config = config
        self._options = options
        self._running: defaultdict[str, set[asyncio.Task[Outcome]]] = defaultdict(set)
        # Node executions this runner owns now, with the attempt it claimed: heartbeats.
        self._owned: dict[uuid.UUID, int] = {}
        self._handlers: set[asyncio.Task[Any]] = set()
        self._jobs: tuple[AbstractChannel, AbstractQueue, str] | None = None
        self._heartbeat: asyncio.Task[None] | None = None
        self._snapshots = GraphCache()
        self._free_blocks = FreeBlocks(billing, blocks)
        self._draining = False

    async def start(self, connection: AbstractRobustConnection, concurrency: int) -> None:
        jobs = await connection.channel()
        await jobs.set_qos(prefetch_count=concurrency)
        queue, tag = await consume(jobs, JOBS_QUEUE, self.handle_job)
        self._jobs = (jobs, queue, tag)
        control = await connection.channel()
        # Named by us, not the broker: a robust channel re-declares it after a reconnect,
        # which a server-named (amq.gen-*) queue cannot be.
        control_queue = await control.declare_queue(
            f"agentloom.control.{uuid.uuid4().hex}", exclusive=True, auto_delete=True
        )
        await control_queue.bind(CONTROL_EXCHANGE)
        await control_queue.consume(self.handle_control, no_ack=True)
        self._heartbeat = asyncio.create_task(self._beat())

    async def drain(self, grace_s: float) -> None:
        """Stop taking jobs; give running ones `grace_s` to finish; hand the rest back."""
        self._draining = True  # what running nodes queue next goes out as jobs
        if self._jobs is not None:
            _channel, queue, tag = self._jobs
            with contextlib.suppress(Exception):
                await queue.cancel(tag)
        handlers = set(self._handlers)
        if handlers:
            _done, pending = await asyncio.wait(handlers, timeout=grace_s)
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.wait(pending, timeout=5)
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        if self._jobs is not None:
            with contextlib.suppress(Exception):
                await self._jobs[0].close()

    async def _beat(self) -> None:
        interval = max(0.2, self._options.lease_s / 3)
        while True:
            await asyncio.sleep(interval)
            owned = list(self._owned.items())
            try:
                async with self._sessions.begin() as session:
                    await repository.extend_leases(session, owned, self._options.lease_s)
            except Exception:
                log.warning("lease heartbeat failed", exc_info=True)

    async def handle_control(self, message: AbstractIncomingMessage) -> None:
        try:
            cancel = CancelExecution.model_validate_json(message.body)
        except ValidationError:
            log.error("malformed control message dropped")
            return
        for task in list(self._running.get(cancel.execution_id, ())):
            task.cancel()

    async def handle_job(self, message: AbstractIncomingMessage) -> None:
        current = asyncio.current_task()
        if current is not None:
            self._handlers.add(current)
        try:
            await self._handle_job(message)
        finally:
            if current is not None:
                self._handlers.discard(current)

    async def _handle_job(self, message: AbstractIncomingMessage) -> None:
        try:
            job = NodeJob.model_validate_json(message.body)
        except ValidationError as error:
            raise PoisonMessage(f"not a node job: {error.error_count()} errors") from None
        handled, claim = False, None
        if await self._is_inline_job(job):
            # Claimed, run and finished in one transaction, with what it queues.
            handled, claim = await self._run_job_inline(job)
        if not handled:
            async with self._sessions.begin() as session:
                claim = await repository.claim_node(
                    session, job.node_execution_id, lease_s=self._options.lease_s
                )
        # None: finished, cancelled, not due, or owned by a live runner: nothing to do.
        while claim is not None:
            current = claim
            self._owned[current.node_execution_id] = current.attempt
            try:
                # The node it queued next, already claimed for this runner (local chaining).
                claim = await self._execute(current)
            except asyncio.CancelledError:
                # Shutting down with the block still running: hand it back at once.
                with contextlib.suppress(Exception):
                    async with self._sessions.begin() as session:
                        await repository.requeue_node(session, current, retry_at=None, error=None)
                raise
            finally:
                self._owned.pop(current.node_execution_id, None)

    async def _execute(self, claim: repository.ClaimedNode) -> repository.ClaimedNode | None:
        """Run a claimed node execution and store its result; returns the next node
        execution it queued when this runner claimed it to run it itself."""
        block = self._blocks.get(claim.block_id)
        cost = 0
        if block is None:
            missing = f"block {claim.block_id!r} is not installed"
            outcome = Outcome(Status.FAILED, [[ERROR_PIN, missing]], missing)
        elif getattr(block, "runs_graph", False):
            failure = await self._start_child(block, claim)
            if failure is None:
                return None  # the node finishes when its child execution does
            outcome = Outcome(Status.FAILED, [[ERROR_PIN, failure]], failure)
        else:
            outcome = await self._run_interruptible(block, claim)
            if outcome.status is Status.CANCELLED:
                return None
            policy = self._options.retry.with_overrides(claim.config)
            if outcome.retryable and policy.allows_another(claim.attempt):
                delay = policy.delay_s(claim.attempt)
                async with self._sessions.begin() as session:
                    await repository.requeue_node(
                        session,
                        claim,
                        retry_at=repository.now() + timedelta(seconds=delay),
                        error=f"attempt {claim.attempt} failed: {outcome.error}",
                    )
                return None
            if outcome.status is Status.COMPLETED:
                try:
                    outcome, cost = await self._charge(claim, block, outcome)
                except grpc.aio.AioRpcError as error:
                    if error.code() in TRANSIENT_CODES:
                        # Billing is unreachable: run it again shortly rather than unpaid.
                        async with self._sessions.begin() as session:
                            await repository.requeue_node(
                                session,
                                claim,
                                retry_at=repository.now() + timedelta(seconds=2),
                                error=f"billing unavailable: {error.code().name}",
                            )
                        return None
                    log.error("billing refused a charge: %s %s", error.code(), error.details())
                    refused = f"billing refused the charge ({error.code().name})"
                    outcome = Outcome(Status.FAILED, [], refused)
        finished = await self._finish(claim, outcome, cost)
        if finished is None:
            if cost:
                await self._refund_if_cancelled(claim)
            return None
        rows, following = finished
        await self._outbox.flush(rows)
        return following

    async def _is_inline_job(self, job: NodeJob) -> bool:
        if job.block_id is None or self._draining:
            return False
        return self._inline(job.block_id, await self._free_blocks.current())

    async def _run_job_inline(self, job: NodeJob) -> tuple[bool, repository.ClaimedNode | None]:
        """The job of an inline block: the claim, the run and the result in one
        transaction (a commit less than claiming first), the execution row locked first as
        in `_finish`. Returns whether it handled the job, and the node execution it queued
        and claimed to run next. Not handled when another transaction holds the execution
        (a runner working through a fan-out, which has likely claimed this node already):
        the caller claims it the usual way rather than wait for that transaction."""
        block = self._blocks[job.block_id or ""]
        async with self._sessions.begin() as session:
            execution = await repository.lock_execution(
                session,
                job.execution_id,
                with_graph=job.execution_id not in self._snapshots,
                skip_locked=True,
            )
            if execution is None:
                return False, None
            claim = await repository.claim_node(
                session, job.node_execution_id, lease_s=self._options.lease_s
            )
            if claim is None:
                return True, None
            outcome = await self._run_quick(block, claim)
            policy = self._options.retry.with_overrides(claim.config)
            if outcome.retryable and policy.allows_another(claim.attempt):
                delay = policy.delay_s(claim.attempt)
                await repository.requeue_node(
                    session,
                    claim,
                    retry_at=repository.now() + timedelta(seconds=delay),
                    error=f"attempt {claim.attempt} failed: {outcome.error}",
                )
                return True, None
            passed = await self._pass_on(session, execution, claim, outcome, 0)
        if passed is None:
            return True, None
        rows, following = passed
        await self._outbox.flush(rows)
        return True, following

    async def _run_quick(self, block: type[Block], claim: repository.ClaimedNode) -> Outcome:
        """Run an inline block within its node's timeout (no task of its own: a stop
        rolls its transaction back by ending the execution, which the claim then sees)."""
        timeout_s = self._timeout_s(claim.config)
        try:
            # A deadline on this task rather than `wait_for` (a task per node).
            async with asyncio.timeout(timeout_s):
                return await self._run(block, claim)
        except TimeoutError:
            message = f"timed out after {timeout_s:g}s"
            return Outcome(Status.FAILED, [[ERROR_PIN, message]], message)

    async def _finish(
        self, claim: repository.ClaimedNode, outcome: Outcome, cost: int
    ) -> tuple[list[OutboxMessage], repository.ClaimedNode | None] | None:
        """Store the result and pass it along the graph's links in one transaction (what
        the scheduler did on a `node.finished` message, a hop and a commit less per node).
        The execution row is locked first, as every transaction that ends an execution
        does, so the two never wait on each other. None when nothing was stored.

        Eager local chaining: what this result queues is kept for this runner rather than
        sent as jobs; `_run_inline` runs the inline ones in this transaction and returns
        the one left to run after the commit (docs/engine.md)."""
        async with self._sessions.begin() as session:
            execution = await repository.lock_execution(
                session,
                str(claim.execution_id),
                with_graph=claim.execution_id not in self._snapshots,
            )
            if execution is None:
                return None
            return await self._pass_on(session, execution, claim, outcome, cost)

    async def _pass_on(
        self,
        session: AsyncSession,
        execution: Execution,
        claim: repository.ClaimedNode,
        outcome: Outcome,
        cost: int,
    ) -> tuple[list[OutboxMessage], repository.ClaimedNode | None] | None:
        """`_finish`'s work once the execution row is locked: store the result, pass it
        on, run what it queued inline, and end the execution if nothing is left."""
        finished = await repository.finish_node(
            session,
            claim,
            status=outcome.status,
            outputs=outcome.outputs,
            error=outcome.error,
            cost=cost,
            applied=execution.status == Status.RUNNING.value,
        )
        if finished is None:
            return None
        engine = scheduling.Engine(
            session,
            execution,
            await self._snapshots.get(session, execution),
            self._blocks,
            self._topology,
            self._options.limits,
        )
        if not self._draining:
            free = await self._free_blocks.current()
            engine.keep = lambda node: self._inline(node.block_id, free)
        engine.defer_completion = True
        await engine.apply_finished(finished, stored_applied=True)
        following, tally = await self._run_inline(session, engine)
        if following is None:
            await engine.complete_if_done(tally)
        if execution.ended_at is not None:
            self._snapshots.forget(str(execution.id))
        return engine.rows, following

    def _inline(self, block_id: str, free: frozenset[str]) -> bool:
        block = self._blocks.get(block_id)
        return block is not None and block.inline and block_id in free

    async def _run_inline(
        self, session: AsyncSession, engine: scheduling.Engine
    ) -> tuple[repository.ClaimedNode | None, repository.Tally | None]:
        """Take the node executions the engine kept for this runner (queued by this result,
        not written yet). Inline blocks (pure and quick, priced 0) run here, in this
        transaction, and what they queue in turn joins the queue, within a budget of nodes
        and time. Each is written once, in its final state (the database records the
        QUEUED and RUNNING events it went through), so a chain or fan-out of such nodes
        costs one commit in all. One node that is not inline (or the first one left when
        the budget is spent) is written RUNNING under this runner's lease and returned, to
        run after the commit; the others left are written QUEUED and sent as jobs. Also
        returns the execution's tally as it stands at the end, when it took one."""
        execution = engine.execution
        free = await self._free_blocks.current()
        budget = INLINE_MAX_NODES
        deadline = time.monotonic() + INLINE_MAX_S
        following: repository.ClaimedNode | None = None
        tally: repository.Tally | None = None
        tries = 0
        while True:
            if not engine.kept:
                # The count and the claim must see them: written, and on the first try
                # counted in the same round trip.
                counted = None
                if tries == 0 and self._may_take_siblings(engine, budget, deadline):
                    counted = await engine.write_finished_and_tally()
                else:
                    await engine.write_finished()
                claimed, tally = await self._take_siblings(
                    session, engine, free, budget, deadline, counted=counted
                )
                tries += 1
                if not claimed:
                    break
            node = engine.kept.popleft()
            moment = repository.now()
            if execution.status != Status.RUNNING.value:
                # A result of this transaction ended the execution: the node never runs.
                node.status, node.ended_at = Status.CANCELLED.value, moment
                session.add(node)
                continue
            spent = budget <= 0 or time.monotonic() > deadline
            claimed = node.status == Status.RUNNING.value  # a sibling claimed to run here
            if not claimed and (spent or not self._inline(node.block_id, free)):
                if following is not None:
                    engine.release(node)
                    continue
                node.status, node.attempt, node.started_at = Status.RUNNING.value, 1, moment
                node.lease_expires_at = moment + timedelta(seconds=self._options.lease_s)
                session.add(node)
                following = self._claim_of(execution, node)
                continue
            budget -= 1
            if not claimed:
                node.status, node.attempt, node.started_at = Status.RUNNING.value, 1, moment
            block = self._blocks[node.block_id]
            outcome = await self._run_quick(block, self._claim_of(execution, node))
            policy = self._options.retry.with_overrides(node.config)
            if outcome.retryable and policy.allows_another(node.attempt):
                node.status = Status.QUEUED.value
                delay_s = policy.delay_s(node.attempt)
                node.retry_at = repository.now() + timedelta(seconds=delay_s)
                node.error = f"attempt {node.attempt} failed: {outcome.error}"
                node.lease_expires_at = None
                session.add(node)
                continue
            node.status = outcome.status.value
            node.outputs = outcome.outputs
            node.error = outcome.error
            node.ended_at = repository.now()
            node.lease_expires_at = None
            node.applied = True
            if inspect(node).transient:
                engine.finished.append(node)  # queued here: written once, with the others
            else:
                session.add(node)  # a sibling claimed from the database
            await engine.apply_finished(node, stored_applied=True)
        await engine.write_finished()
        return following, tally

    async def _take_siblings(
        self,
        session: AsyncSession,
        engine: scheduling.Engine,
        free: frozenset[str],
        budget: int,
        deadline: float,
        *,
        counted: repository.Tally | None,
    ) -> tuple[bool, repository.Tally | None]:
        """With budget left, claim inline node executions of the same execution that wait
        for a runner (a fan-out's other branches) and queue them here: one statement
        claims many, and their results are stored and passed on in this transaction.
        Returns whether it claimed any, and `counted` (the execution's tally, taken on the
        transaction's first try: a chain's only one): with nothing left to run no claim is
        tried, and with nothing claimed the completion check reuses it. Later tries only
        claim (a count reads every node execution of the execution)."""
        if not self._may_take_siblings(engine, budget, deadline):
            return False, None
        tally = counted
        if tally is not None and tally.active == 0:
            return False, tally
        block_ids = [block_id for block_id in free if self._inline(block_id, free)]
        claimed = await repository.claim_queued(
            session,
            engine.execution.id,
            block_ids=block_ids,
            limit=min(budget, SIBLINGS_PER_CLAIM),
            lease_s=self._options.lease_s,
        )
        engine.kept.extend(claimed)
        return bool(claimed), tally

    def _may_take_siblings(self, engine: scheduling.Engine, budget: int, deadline: float) -> bool:
        return not (
            self._draining
            or budget <= 0
            or time.monotonic() > deadline
            or engine.execution.status != Status.RUNNING.value
        )

    @staticmethod
    def _claim_of(execution: Execution, node: NodeExecution) -> repository.ClaimedNode:
        return repository.ClaimedNode(
            node_execution_id=node.id,
            execution_id=execution.id,
            node_id=node.node_id,
            block_id=node.block_id,
            inputs=node.inputs,
            attempt=node.attempt,
            user_id=execution.user_id,
            graph_id=execution.graph_id,
            config=node.config,
            max_credits=execution.max_credits,
            credentials_inputs=execution.credentials_inputs,
        )

    async def _refund_if_cancelled(self, claim: repository.ClaimedNode) -> None:
        """Charged, then stopped before the result was stored: nothing is charged after a
        stop. (A node taken over by a newer attempt keeps its one charge.)"""
        async with self._sessions() as session:
            status = await repository.node_status(session, str(claim.node_execution_id))
        if status != Status.CANCELLED.value:
            return
        with contextlib.suppress(grpc.aio.AioRpcError):
            await self._billing.Refund(
                billing_pb2.RefundRequest(
                    user_id=claim.user_id,
                    node_execution_id=str(claim.node_execution_id),
                    reason="the execution was stopped before the node's result was stored",
                )
            )

    async def _start_child(self, block: type[Block], claim: repository.ClaimedNode) -> str | None:
        """Start a sub-agent's child execution and let go of the node (no runner waits on
        it); returns why it could not start, or None."""
        try:
            spec = block.Input.model_validate(claim.inputs)
        except ValidationError as error:
            return f"invalid input: {error.errors()[0]['msg']}"
        fields = spec.model_dump()
        inputs = {**fields.get("inputs", {}), **(spec.model_extra or {})}
        try:
            reply = await self._graphs.GetGraph(
                graphs_pb2.GetGraphRequest(
                    user_id=claim.user_id,
                    graph_id=fields["graph_id"],
                    version=fields.get("graph_version", 0),
                )
            )
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                return f"sub-agent graph {fields['graph_id']!r} not found"
            raise
        snapshot = graph_json(reply.graph)
        problems = input_problems(GraphSnapshot.from_json(snapshot), self._blocks, inputs)
        if problems:
            return "invalid sub-agent inputs: " + "; ".join(
                f"{name}: {problem}" for name, problem in sorted(problems.items())
            )
        async with self._sessions.begin() as session:
            parent = await session.get(Execution, claim.execution_id)
            if parent is None:
                return "the parent execution is gone"
            if parent.depth + 1 > self._options.max_depth:
                return f"sub-agents nest at most {self._options.max_depth} deep"
            if reply.graph.id in await repository.ancestor_graph_ids(session, parent.id):
                return "a sub-agent may not run a graph that is already running above it"
            if not await repository.await_child(session, claim):
                return None  # this attempt lost the node: the newer one carries on
            _child, row = await repository.create_execution(
                session,
                topology=self._topology,
                user_id=claim.user_id,
                graph_id=reply.graph.id,
                graph_version=reply.graph.version,
                graph=snapshot,
                inputs=inputs,
                credentials_inputs=parent.credentials_inputs,
                parent=(parent.id, claim.node_execution_id, parent.depth + 1),
            )
        await self._outbox.flush([row])
        return None

    def _timeout_s(self, config: Mapping[str, Any]) -> float:
        wanted = config.get("timeout_s")
        if isinstance(wanted, int | float) and not isinstance(wanted, bool) and wanted > 0:
            return min(float(wanted), self._options.node_timeout_s)
        return self._options.node_timeout_s

    async def _run_interruptible(
        self, block: type[Block], claim: repository.ClaimedNode
    ) -> Outcome:
        execution_id = str(claim.execution_id)
        task = asyncio.create_task(self._run(block, claim))
        self._running[execution_id].add(task)
        timeout_s = self._timeout_s(claim.config)
        started = time.monotonic()
        try:
            outcome = await asyncio.wait_for(task, timeout_s)
            outcome.duration_ms = int((time.monotonic() - started) * 1000)
            return outcome
        except TimeoutError:
            message = f"timed out after {timeout_s:g}s"
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
        try:
            credentials = await self._credentials_for(block, claim)
        except CredentialProblem as problem:
            return Outcome(Status.FAILED, [[ERROR_PIN, str(problem)]], str(problem))
        context = BlockContext(
            user_id=claim.user_id,
            graph_id=claim.graph_id,
            execution_id=str(claim.execution_id),
            node_id=claim.node_id,
            node_execution_id=str(claim.node_execution_id),
            config=self._config,
            logger=logging.getLogger(f"agentloom.block.{block.id}"),
            store=UserValues(self._sessions, claim.user_id),
            credentials=credentials,
        )
        if block.uses_tools:
            await self._offer_tools(context, claim)
        outputs: list[list[Any]] = []
        try:
            async for pin, value in block().run(block_input, context):
                outputs.append([pin, to_jsonable_python(value, fallback=str)])
        except BlockError as error:
            outputs.append([ERROR_PIN, str(error)])
            return Outcome(Status.FAILED, outputs, str(error), retryable=error.retryable)
        except Exception as error:  # a bug in the block: the node fails, the runner goes on
            log.exception("block %s raised", block.id)
            message = f"{type(error).__name__}: {error}"
            outputs.append([ERROR_PIN, message])
            return Outcome(Status.FAILED, outputs, message)
        return Outcome(Status.COMPLETED, outputs, None)

    async def _offer_tools(self, context: BlockContext, claim: repository.ClaimedNode) -> None:
        """Give an agent block its tools: the nodes linked from its `tools` pin."""
        async with self._sessions() as session:
            snapshot = await repository.execution_graph(session, claim.execution_id)
        offered = tools.tools_of(GraphSnapshot.from_json(snapshot), claim.node_id, self._blocks)
        context.tools = tuple(t.tool for t in offered.values())

        async def call_tool(name: str, arguments: Mapping[str, Any]) -> dict[str, Any]:
            tool = offered.get(name)
            if tool is None:
                raise ToolError(f"there is no tool named {name!r}")
            return await self._call_tool(claim, tool, arguments)

        context.call_tool = call_tool

    async def _call_tool(
        self,
        agent: repository.ClaimedNode,
        tool: tools.ToolNode,
        arguments: Mapping[str, Any],
    ) -> dict[str, Any]:
        """Run one tool call as a node execution of the agent's execution: run the block,
        charge it, record it with its inputs and outputs; its outputs answer the call."""
        call = repository.ClaimedNode(
            node_execution_id=uuid.uuid4(),
            execution_id=agent.execution_id,
            node_id=tool.node.id,
            block_id=tool.block.id,
            inputs=tool.inputs(arguments),
            attempt=1,
            user_id=agent.user_id,
            graph_id=agent.graph_id,
            config=dict(tool.node.config),
            max_credits=agent.max_credits,
            credentials_inputs=agent.credentials_inputs,
        )
        started_at, started = repository.now(), time.monotonic()
        outcome = await self._run(tool.block, call)
        outcome.duration_ms = int((time.monotonic() - started) * 1000)
        cost = 0
        if outcome.status is Status.COMPLETED:
            try:
                outcome, cost = await self._charge(call, tool.block, outcome)
            except grpc.aio.AioRpcError as error:
                # The agent node fails and is retried (or fails) like any unbilled run.
                raise RetryableBlockError(
                    f"billing could not charge a tool call ({error.code().name})"
                ) from None
        async with self._sessions.begin() as session:
            await repository.record_tool_call(
                session,
                call,
                status=outcome.status,
                outputs=outcome.outputs,
                error=outcome.error,
                cost=cost,
                started_at=started_at,
            )
        if outcome.status is not Status.COMPLETED:
            raise ToolError(f"tool {tool.tool.name!r} failed: {outcome.error}")
        return tools.answer(outcome.outputs)

    async def _credentials_for(
        self, block: type[Block], claim: repository.ClaimedNode
    ) -> dict[str, dict[str, str]]:
        """The user's stored credentials this block needs, by provider, as chosen on
        execute (`credentials_inputs`: {provider or field: {"id": credential id}}). Without
        a choice the block falls back to the platform's defaults."""
        chosen = claim.credentials_inputs or {}
        found: dict[str, dict[str, str]] = {}
        for wanted in getattr(block, "credentials", ()):
            entry = chosen.get(wanted.provider)
            credential_id = entry.get("id") if isinstance(entry, Mapping) else entry
            if not credential_id:
                continue
            try:
                reply = await self._credentials.GetCredential(
                    credentials_pb2.GetCredentialRequest(
                        user_id=claim.user_id, credential_id=str(credential_id)
                    )
                )
            except grpc.aio.AioRpcError as error:
                if error.code() == grpc.StatusCode.NOT_FOUND:
                    raise CredentialProblem(f"credential {credential_id} not found") from None
                raise CredentialProblem(
                    f"credential {credential_id} could not be read ({error.code().name})"
                ) from None
            found[wanted.provider] = {**dict(reply.attributes), **dict(reply.secrets)}
        return found

    async def _charge(
        self, claim: repository.ClaimedNode, block: type[Block], outcome: Outcome
    ) -> tuple[Outcome, int]:
        """Charge what the run used, priced by billing's cost table (idempotent by node
        execution id). A refusal (credits, budget, daily cap) fails the node and, since it
        yields no `error` value, the execution."""
        usage = usage_of(claim.inputs, outcome, _model_default(block))
        if not usage.tokens and await self._free_blocks.contains(block.id):
            return outcome, 0  # billing prices this run 0: a charge would record nothing
        request = billing_pb2.ChargeRequest(
            user_id=claim.user_id,
            idempotency_key=str(claim.node_execution_id),
            graph_id=claim.graph_id,
            execution_id=str(claim.execution_id),
            node_id=claim.node_id,
            block_id=block.id,
            usage=usage,
        )
        if claim.max_credits is not None:
            request.execution_budget = claim.max_credits
        try:
            reply = await self._billing.Charge(request)
        except grpc.aio.AioRpcError as error:
            reason, _ = error_info(error)
            refusal = BILLING_REFUSALS.get(reason)
            if refusal is None:
                raise
            return Outcome(Status.FAILED, [], refusal), 0
        return outcome, int(reply.amount)


# Inline runs per transaction: at most this many nodes, started within this many seconds
# of the first (the execution row stays locked meanwhile, and their events wait for the
# commit).
INLINE_MAX_NODES = 500
INLINE_MAX_S = 0.1
# Waiting inline node executions of the same execution claimed in one statement.
SIBLINGS_PER_CLAIM = 100


class CredentialProblem(Exception):
    """A chosen credential that cannot be had: the node fails with this message."""


BILLING_REFUSALS = {
    "INSUFFICIENT_CREDITS": "insufficient credits",
    "BUDGET_EXCEEDED": "the execution's credit budget (max_credits) is spent",
    "DAILY_CAP_EXCEEDED": "the daily credit cap is reached",
}


TRANSIENT_CODES = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,
        grpc.StatusCode.DEADLINE_EXCEEDED,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.ABORTED,
    }
)


def _model_default(block: type[Block]) -> str:
    model_field = block.Input.model_fields.get("model")
    default = model_field.default if model_field is not None else None
    return default if isinstance(default, str) else ""


def usage_of(
    inputs: Mapping[str, Any], outcome: Outcome, default_model: str = ""
) -> billing_pb2.Usage:
    """What a run used: bytes in and out, run time, and LLM tokens it reported on a `usage`
    pin ({prompt_tokens, completion_tokens}) for the model named in its `model` input."""
    tokens = []
    for pin, value in outcome.outputs:
        if pin == "usage" and isinstance(value, Mapping):
            tokens.append(
                billing_pb2.TokenUsage(
                    model=str(inputs.get("model") or default_model or "unknown"),
                    prompt_tokens=int(value.get("prompt_tokens") or 0),
                    completion_tokens=int(value.get("completion_tokens") or 0),
                )
            )
    return billing_pb2.Usage(
        input_bytes=len(json.dumps(inputs, default=str)),
        output_bytes=len(json.dumps(outcome.outputs, default=str)),
        duration_ms=outcome.duration_ms,
        tokens=tokens,
    )
