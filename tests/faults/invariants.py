"""A batch of executions through the real gateway, and the checks C1-C7 run after a fault."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

import aio_pika
import asyncpg
import httpx
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine

from agentloom_billing.ledger import check_conservation
from agentloom_common.bus import DEAD_QUEUE
from agentloom_devkit import resources
from agentloom_devkit.stack import Stack

REPORTS: list[str] = []

# in -> slow LLM call -> template -> out: the LLM call gives kills time to land mid-node.
CHAIN: dict[str, Any] = {
    "name": "fault chain",
    "description": "",
    "nodes": [
        {"id": "in", "block_id": "text_input_block", "input_default": {"name": "topic"}},
        {
            "id": "llm",
            "block_id": "llm_call_block",
            "input_default": {"prompt": "[[slow:0.4]] about {topic}", "model": "gpt-4o-mini"},
        },
        {
            "id": "wrap",
            "block_id": "text_template_block",
            "input_default": {"template": "<{{ r }}>"},
        },
        {"id": "out", "block_id": "output_block", "input_default": {"name": "result"}},
    ],
    "links": [
        {"source_id": "in", "source_name": "text", "sink_id": "llm", "sink_name": "topic"},
        {"source_id": "llm", "source_name": "response", "sink_id": "wrap", "sink_name": "r"},
        {"source_id": "wrap", "source_name": "text", "sink_id": "out", "sink_name": "value"},
    ],
}


def expected_output(topic: str) -> str:
    return f"<summary: [[slow:0.4]] about {topic}>"


@dataclass
class Batch:
    stack: Stack
    client: httpx.AsyncClient
    user_id: str
    accepted: dict[str, str] = field(default_factory=dict)  # execution id -> topic

    async def start(self, count: int) -> None:
        graph = (await self.client.post("/api/graphs", json=CHAIN)).json()
        for i in range(count):
            topic = f"t{i}-{time.monotonic_ns()}"
            response = await self.client.post(
                f"/api/graphs/{graph['id']}/execute", json={"inputs": {"topic": topic}}
            )
            if response.status_code == 201:
                self.accepted[response.json()["id"]] = topic

    async def post_during_outage(self, graph_id: str, topic: str) -> None:
        """An execute call while something is down: either refused (nothing accepted) or
        accepted (then it must complete like the others)."""
        response = await self.client.post(
            f"/api/graphs/{graph_id}/execute", json={"inputs": {"topic": topic}}
        )
        assert response.status_code in (201, 503), response.text
        if response.status_code == 201:
            self.accepted[response.json()["id"]] = topic

    async def check(self, name: str, timeout_s: float = 120, poison: int = 0) -> None:
        """C1-C7; records the report line, then asserts."""
        dsn = self.stack.database_url.replace("+asyncpg", "")
        connection = await asyncpg.connect(dsn)
        try:
            statuses = await _wait_terminal(connection, list(self.accepted), timeout_s)
            report = await _report(connection, self.accepted, statuses)
            REPORTS.append(f"{name}: {report.line()}")
            # C1: every accepted execution is terminal, with the outputs it would have had.
            assert report.lost == [], f"not terminal: {report.lost}"
            assert report.wrong == [], f"wrong outputs or status: {report.wrong[:5]}"
            # C2: one output set per node execution (one completed run per node here).
            assert report.duplicated == 0
            # C3: one charge per node execution, only for completed ones.
            charges = await _double_charges(connection)
            assert charges == [], charges[:5]
            # C4: credits conserved for every user.
            unbalanced = await _conservation(connection)
            assert unbalanced == [], unbalanced[:5]
            assert await ledger_problems(self.stack) == []
            # C5: outbox drained.
            await _wait_outbox_empty(connection)
            # G9: every execution's events numbered 1..n, published, ending in its status.
            events = await _event_problems(connection, statuses)
            assert events == [], events[:5]
        finally:
            await connection.close()
        # C6: dead-lettered messages are exactly the poison injected.
        assert await dead_letter_count(self.stack) == poison
        # C7: the database's transition guard never had to refuse an update.
        assert illegal_transitions(self.stack) == []


@dataclass
class Report:
    ran: int
    completed: int
    lost: list[str]
    wrong: list[str]
    duplicated: int

    def line(self) -> str:
        return (
            f"ran {self.ran}, completed {self.completed}, lost {len(self.lost)}, "
            f"duplicated {self.duplicated}"
        )


async def _wait_terminal(
    connection: asyncpg.Connection, ids: list[str], timeout_s: float
) -> dict[str, str]:
    deadline = time.monotonic() + timeout_s
    while True:
        rows = await connection.fetch(
            "SELECT id::text, status FROM executor.executions WHERE id = ANY($1::uuid[])", ids
        )
        statuses = {row["id"]: row["status"] for row in rows}
        open_ = [i for i in ids if statuses.get(i) not in ("COMPLETED", "FAILED", "CANCELLED")]
        if not open_ or time.monotonic() > deadline:
            return statuses
        await asyncio.sleep(0.5)


async def _report(
    connection: asyncpg.Connection, accepted: dict[str, str], statuses: dict[str, str]
) -> Report:
    ids = list(accepted)
    lost = [i for i in ids if statuses.get(i) not in ("COMPLETED", "FAILED", "CANCELLED")]
    rows = await connection.fetch(
        "SELECT id::text, status, outputs FROM executor.executions WHERE id = ANY($1::uuid[])",
        ids,
    )
    wrong = []
    completed = 0
    for row in rows:
        outputs = json.loads(row["outputs"])
        want = {"result": [expected_output(accepted[row["id"]])]}
        if row["status"] == "COMPLETED" and outputs == want:
            completed += 1
        elif row["id"] not in lost:
            wrong.append(f"{row['id']}: {row['status']} {outputs}")
    duplicated = await connection.fetchval(
        """
        SELECT coalesce(sum(n - 1), 0) FROM (
            SELECT count(*) AS n FROM executor.node_executions
            WHERE execution_id = ANY($1::uuid[]) AND status = 'COMPLETED'
            GROUP BY execution_id, node_id
        ) per_node
        """,
        ids,
    )
    return Report(len(ids), completed, lost, wrong, int(duplicated))


async def _double_charges(connection: asyncpg.Connection) -> list[str]:
    rows = await connection.fetch(
        """
        SELECT n.id::text AS id, n.status, n.cost,
               (SELECT count(*) FROM billing.transactions t
                 WHERE t.idempotency_key = n.id::text AND t.kind = 'usage') AS charges
        FROM executor.node_executions n
        """
    )
    problems = []
    for row in rows:
        expected = 1 if row["status"] == "COMPLETED" and row["cost"] > 0 else 0
        if row["charges"] != expected:
            problems.append(
                f"{row['id']} {row['status']} cost={row['cost']} charges={row['charges']}"
            )
    return problems


async def _conservation(connection: asyncpg.Connection) -> list[str]:
    rows = await connection.fetch(
        """
        SELECT a.user_id, a.balance, coalesce(sum(t.amount), 0) AS total
        FROM billing.accounts a LEFT JOIN billing.transactions t ON t.user_id = a.user_id
        GROUP BY a.user_id, a.balance
        """
    )
    return [
        f"{r['user_id']}: {r['balance']} != {r['total']}"
        for r in rows
        if r["balance"] != r["total"]
    ]


async def ledger_problems(stack: Stack) -> list[str]:
    """Billing's own conservation check (grants + top-ups - usage + refunds + adjustments =
    balance, running balances chained, refunds within charges), on the stack's database."""
    engine = create_async_engine(stack.database_url)
    try:
        async with AsyncSession(engine) as session:
            return [str(problem) for problem in await check_conservation(session)]
    finally:
        await engine.dispose()


async def _wait_outbox_empty(connection: asyncpg.Connection, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        left = await connection.fetchval("SELECT count(*) FROM executor.outbox")
        if left == 0:
            return
        assert time.monotonic() < deadline, f"{left} outbox rows never published"
        await asyncio.sleep(0.5)


async def _event_problems(
    connection: asyncpg.Connection, statuses: dict[str, str], timeout_s: float = 30
) -> list[str]:
    """Once the relay has numbered and published them (`event_queue` empty of the
    executions' events, its cursor past the last): each execution's events are numbered
    1..n without gap or duplicate, and the last status event is the execution's status."""
    ids = list(statuses)
    deadline = time.monotonic() + timeout_s
    while True:
        waiting = await connection.fetchval(
            """
            SELECT (SELECT count(*) FROM executor.event_queue WHERE execution_id = ANY($1::uuid[]))
                 + (SELECT count(*) FROM executor.execution_events
                    WHERE execution_id = ANY($1::uuid[])
                      AND id > (SELECT published_through FROM executor.event_relay))
            """,
            ids,
        )
        if waiting == 0:
            break
        if time.monotonic() > deadline:
            return [f"{waiting} events never numbered or published"]
        await asyncio.sleep(0.5)
    rows = await connection.fetch(
        """
        SELECT execution_id::text AS id, array_agg(seq ORDER BY seq) AS seqs,
               (array_agg(data->>'status' ORDER BY seq)
                   FILTER (WHERE type = 'execution.status'))[count(*) FILTER
                   (WHERE type = 'execution.status')] AS last_status
        FROM executor.execution_events WHERE execution_id = ANY($1::uuid[])
        GROUP BY execution_id
        """,
        ids,
    )
    found = {row["id"]: row for row in rows}
    problems = []
    for execution_id, status in statuses.items():
        row = found.get(execution_id)
        if row is None:
            problems.append(f"{execution_id}: no events")
        elif list(row["seqs"]) != list(range(1, len(row["seqs"]) + 1)):
            problems.append(f"{execution_id}: seqs {list(row['seqs'])}")
        elif row["last_status"] != status:
            problems.append(f"{execution_id}: last status event {row['last_status']} != {status}")
    return problems


async def dead_letter_count(stack: Stack) -> int:
    connection = await aio_pika.connect(resources.amqp_url(stack.config.vhost))
    try:
        channel = await connection.channel()
        queue = await channel.declare_queue(DEAD_QUEUE, passive=True)
        return int(queue.declaration_result.message_count or 0)
    finally:
        await connection.close()


def illegal_transitions(stack: Stack) -> list[str]:
    found = []
    for path in stack.config.log_dir.glob("*.log"):
        for line in path.read_text(errors="replace").splitlines():
            if "illegal status transition" in line:
                found.append(f"{path.name}: {line[:300]}")
    return found
