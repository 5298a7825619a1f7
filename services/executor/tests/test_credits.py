"""Running out of credits mid-way, and a per-execution credit cap, on the real billing
service: the execution fails with the reason, nothing is charged beyond the balance or the
cap, and the ledger stays consistent."""

from __future__ import annotations

import uuid
from collections.abc import Awaitable, Callable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from agentloom.billing.v1 import billing_pb2, billing_pb2_grpc
from agentloom_billing.ledger import check_conservation
from agentloom_billing.server import RunningServer
from agentloom_common.grpc_client import create_channel
from agentloom_executor import repository
from agentloom_executor.server import Infra
from agentloom_executor.tables import Execution

WaitTerminal = Callable[[Infra, str], Awaitable[Execution]]

CHAIN_OF_FOUR = {
    "nodes": [
        {"id": "in", "block_id": "text_input_block", "input_default": {"name": "w"}},
        *[
            {
                "id": f"t{i}",
                "block_id": "text_template_block",
                "input_default": {"template": "{{ x }}."},
            }
            for i in range(4)
        ],
    ],
    "links": [
        {"source_id": "in", "source_name": "text", "sink_id": "t0", "sink_name": "x"},
        *[
            {"source_id": f"t{i}", "source_name": "text", "sink_id": f"t{i + 1}", "sink_name": "x"}
            for i in range(3)
        ],
    ],
}


async def _billing(server: RunningServer) -> billing_pb2_grpc.BillingServiceStub:
    return billing_pb2_grpc.BillingServiceStub(
        create_channel(f"127.0.0.1:{server.port}", deadline_s=10)
    )


async def _start(engine: Infra, user_id: str, max_credits: int | None = None) -> str:
    async with engine.sessions.begin() as session:
        execution, row = await repository.create_execution(
            session,
            topology=engine.topology,
            user_id=user_id,
            graph_id="g-credits",
            graph_version=1,
            graph=CHAIN_OF_FOUR,
            inputs={"w": "go"},
            credentials_inputs={},
            max_credits=max_credits,
        )
    await engine.outbox.flush([row])
    return str(execution.id)


async def _conservation(engine: Infra) -> list[Any]:
    async with AsyncSession(engine.engine) as session:
        return list(await check_conservation(session))


async def test_running_out_mid_way_fails_cleanly_at_balance_zero(
    engine: Infra, billing_server: RunningServer, wait_terminal: WaitTerminal
) -> None:
    billing = await _billing(billing_server)
    user_id = f"broke-{uuid.uuid4().hex[:8]}"
    balance = (await billing.GetBalance(billing_pb2.GetBalanceRequest(user_id=user_id))).balance
    await billing.Charge(
        billing_pb2.ChargeRequest(
            user_id=user_id, idempotency_key=f"drain-{user_id}", amount=balance - 2
        )
    )
    execution = await wait_terminal(engine, await _start(engine, user_id))
    assert execution.status == "FAILED"
    assert "insufficient credits" in (execution.error or "")
    after = (await billing.GetBalance(billing_pb2.GetBalanceRequest(user_id=user_id))).balance
    assert after == 0
    assert execution.cost == 2
    assert await _conservation(engine) == []


async def test_max_credits_caps_an_execution(
    engine: Infra, billing_server: RunningServer, wait_terminal: WaitTerminal
) -> None:
    billing = await _billing(billing_server)
    user_id = f"capped-{uuid.uuid4().hex[:8]}"
    before = (await billing.GetBalance(billing_pb2.GetBalanceRequest(user_id=user_id))).balance
    execution = await wait_terminal(engine, await _start(engine, user_id, max_credits=3))
    assert execution.status == "FAILED"
    assert "max_credits" in (execution.error or "")
    after = (await billing.GetBalance(billing_pb2.GetBalanceRequest(user_id=user_id))).balance
    assert before - after == 3 == execution.cost
    assert await _conservation(engine) == []
