"""The executions API over gRPC: translation between protos and the repository."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import grpc
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from agentloom.executor.v1 import executor_pb2, executor_pb2_grpc
from agentloom_blocks.sdk import Block
from agentloom_common.bus import Topology
from agentloom_common.db import autocommit_sessions
from agentloom_common.errors import InvalidArgument, NotFound
from agentloom_executor import events, repository
from agentloom_executor.convert import (
    event_proto,
    execution_proto,
    node_execution_proto,
    status_proto,
)
from agentloom_executor.cursor import decode_cursor, encode_cursor
from agentloom_executor.graph import input_problems
from agentloom_executor.graph_versions import GraphVersion, GraphVersions
from agentloom_executor.outbox import Outbox
from agentloom_executor.scheduling import Limits, request_next_waiting
from agentloom_executor.starts import GroupStarter
from agentloom_executor.status import TERMINAL, Status
from agentloom_executor.tables import Execution

MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 50
MAX_IDEMPOTENCY_KEY = 200
MAX_EVENTS_PAGE = 500


def _parse_object(text: str, field: str) -> dict[str, Any]:
    if not text:
        return {}
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        raise InvalidArgument(f"{field} is not valid JSON") from None
    if not isinstance(value, dict):
        raise InvalidArgument(f"{field} must be a JSON object")
    return value


class ExecutionsServicer(executor_pb2_grpc.ExecutionsServiceServicer):
    def __init__(
        self,
        session_factory: async_sessionmaker[AsyncSession],
        outbox: Outbox,
        versions: GraphVersions,
        blocks: Mapping[str, type[Block]],
        topology: Topology,
        limits: Limits,
    ) -> None:
        self._sessions = session_factory
        # One-statement reads and writes (and results, whose node list is read after the
        # execution row, so it holds at least what that row says ran): no BEGIN, no COMMIT.
        self._single = autocommit_sessions(session_factory)
        self._outbox = outbox
        self._blocks = blocks
        self._topology = topology
        # Graph versions held between runs (graph_versions.py).
        self._versions = versions
        self._starts = GroupStarter(session_factory, outbox, blocks, topology, limits)

    async def CreateExecution(
        self, request: executor_pb2.CreateExecutionRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.CreateExecutionResponse:
        max_credits = request.max_credits if request.HasField("max_credits") else None
        if max_credits is not None and max_credits < 0:
            raise InvalidArgument("max_credits must not be negative", reason="INVALID_MAX_CREDITS")
        key = request.idempotency_key or None
        if key is not None and len(key) > MAX_IDEMPOTENCY_KEY:
            raise InvalidArgument(
                f"idempotency_key is longer than {MAX_IDEMPOTENCY_KEY} characters",
                reason="INVALID_IDEMPOTENCY_KEY",
            )
        if key is not None:
            existing = await self._existing(request.user_id, key)
            if existing is not None:
                return existing
        inputs = _parse_object(request.inputs_json, "inputs")
        credentials_inputs = _parse_object(request.credentials_inputs_json, "credentials_inputs")
        graph = await self._get_graph(request.user_id, request.graph_id, request.graph_version)
        snapshot = graph.snapshot
        problems = input_problems(snapshot, self._blocks, inputs)
        if problems:
            raise InvalidArgument(
                "invalid inputs: "
                + "; ".join(f"{name}: {problem}" for name, problem in sorted(problems.items())),
                reason="INPUTS_INVALID",
                metadata={"errors": json.dumps({f"inputs.{k}": v for k, v in problems.items()})},
            )

        def build() -> Execution:
            return repository.new_execution(
                user_id=request.user_id,
                graph_id=graph.id,
                graph_version=graph.version,
                graph=graph.snapshot_json,
                inputs=inputs,
                credentials_inputs=credentials_inputs,
                max_credits=max_credits,
                idempotency_key=key,
            )

        try:
            # Written and started (RUNNING with its first node executions and their jobs,
            # or parked at the user's limit) in one transaction, together with the user's
            # other executions requested meanwhile (starts.py), rather than by the
            # scheduler on an `execution.requested`: a message hop, a transaction and the
            # execution read back less (issue 8).
            execution = await self._starts.create(request.user_id, build, snapshot)
        except IntegrityError:
            # The same key committed concurrently: that execution is the answer.
            existing = await self._existing(request.user_id, key) if key else None
            if existing is None:
                raise
            return existing
        return executor_pb2.CreateExecutionResponse(execution=execution_proto(execution))

    async def _existing(
        self, user_id: str, key: str
    ) -> executor_pb2.CreateExecutionResponse | None:
        async with self._sessions() as session:
            execution = await repository.find_by_idempotency_key(
                session, user_id=user_id, idempotency_key=key
            )
        if execution is None:
            return None
        return executor_pb2.CreateExecutionResponse(
            execution=execution_proto(execution), existing=True
        )

    async def _get_graph(self, user_id: str, graph_id: str, version: int) -> GraphVersion:
        try:
            return await self._versions.get(user_id, graph_id, version)
        except grpc.aio.AioRpcError as error:
            if error.code() == grpc.StatusCode.NOT_FOUND:
                raise NotFound(
                    error.details() or "graph not found", reason="GRAPH_NOT_FOUND"
                ) from None
            raise

    async def GetExecution(
        self, request: executor_pb2.GetExecutionRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.GetExecutionResponse:
        async with self._single() as session:
            execution = await self._read(session, request.user_id, request.execution_id)
            return executor_pb2.GetExecutionResponse(execution=execution_proto(execution))

    async def ListExecutions(
        self, request: executor_pb2.ListExecutionsRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.ListExecutionsResponse:
        page_size = min(request.page_size or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)
        if page_size < 0:
            raise InvalidArgument("page_size must be positive")
        after = decode_cursor(request.page_token) if request.page_token else None
        async with self._single() as session:
            rows = await repository.list_executions(
                session,
                user_id=request.user_id,
                graph_id=request.graph_id or None,
                limit=page_size + 1,
                after=after,
            )
        next_token = ""
        if len(rows) > page_size:
            rows = rows[:page_size]
            next_token = encode_cursor(rows[-1].created_at, rows[-1].id)
        return executor_pb2.ListExecutionsResponse(
            executions=[execution_proto(row) for row in rows], next_page_token=next_token
        )

    async def GetExecutionResults(
        self, request: executor_pb2.GetExecutionResultsRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.GetExecutionResultsResponse:
        async with self._single() as session:
            execution = await self._read(session, request.user_id, request.execution_id)
            nodes = await repository.list_node_executions(session, execution.id)
            return executor_pb2.GetExecutionResultsResponse(
                execution=execution_proto(execution),
                node_executions=[node_execution_proto(node) for node in nodes],
            )

    async def StopExecution(
        self, request: executor_pb2.StopExecutionRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.StopExecutionResponse:
        async with self._sessions.begin() as session:
            execution = await self._find(session, request.user_id, request.execution_id)
            if request.graph_id and execution.graph_id != request.graph_id:
                raise NotFound("execution not found", reason="EXECUTION_NOT_FOUND")
            execution = await repository.lock_execution(session, str(execution.id)) or execution
            rows = []
            if Status(execution.status) not in TERMINAL:
                rows = await repository.end_execution(
                    session, execution, Status.CANCELLED, self._topology
                )
                rows += await request_next_waiting(session, self._topology, execution)
        await self._outbox.flush(rows)
        return executor_pb2.StopExecutionResponse(execution=execution_proto(execution))

    async def ListExecutionEvents(
        self, request: executor_pb2.ListExecutionEventsRequest, context: grpc.aio.ServicerContext
    ) -> executor_pb2.ListExecutionEventsResponse:
        if request.after_seq < 0:
            raise InvalidArgument("after_seq must not be negative", reason="INVALID_AFTER_SEQ")
        limit = min(request.limit or MAX_EVENTS_PAGE, MAX_EVENTS_PAGE)
        async with self._sessions() as session:
            execution = await self._find(session, request.user_id, request.execution_id)
            documents = await events.replay(
                session,
                execution_id=str(execution.id),
                after_seq=request.after_seq,
                limit=limit,
            )
            first = await events.first_seq(session, str(execution.id))
        return executor_pb2.ListExecutionEventsResponse(
            events=[event_proto(document) for document in documents],
            status=status_proto(execution.status),
            first_seq=first,
        )

    async def _read(
        self, session: AsyncSession, user_id: str, execution_id: str
    ) -> repository.ExecutionRow:
        execution = await repository.read_execution(
            session, user_id=user_id, execution_id=execution_id
        )
        if execution is None:
            raise NotFound("execution not found", reason="EXECUTION_NOT_FOUND")
        return execution

    async def _find(self, session: AsyncSession, user_id: str, execution_id: str) -> Execution:
        execution = await repository.get_execution(
            session, user_id=user_id, execution_id=execution_id
        )
        if execution is None:
            raise NotFound("execution not found", reason="EXECUTION_NOT_FOUND")
        return execution
