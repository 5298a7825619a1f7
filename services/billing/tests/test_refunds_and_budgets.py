"""Priced charges, refunds, execution budgets, daily caps, admin movements: through a real
server and database, with the conservation check after every test."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING

import grpc
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from agentloom.billing.v1 import billing_pb2
from agentloom_common.errors import error_info

if TYPE_CHECKING:
    from agentloom.billing.v1.billing_pb2_grpc import BillingServiceAsyncStub as Stub

pytestmark = pytest.mark.usefixtures("ledger_balanced")


async def balance(billing: Stub, user_id: str) -> int:
    return (await billing.GetBalance(billing_pb2.GetBalanceRequest(user_id=user_id))).balance


async def charge(
    billing: Stub, user_id: str, key: str, **fields: object
) -> billing_pb2.ChargeResponse:
    return await billing.Charge(
        billing_pb2.ChargeRequest(user_id=user_id, idempotency_key=key, **fields)  # type: ignore[arg-type]
    )


async def refund(
    billing: Stub, user_id: str, key: str, **fields: object
) -> billing_pb2.RefundResponse:
    return await billing.Refund(
        billing_pb2.RefundRequest(user_id=user_id, node_execution_id=key, **fields)  # type: ignore[arg-type]
    )


async def refused(call: object) -> tuple[grpc.StatusCode, str, dict[str, str]]:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await call  # type: ignore[misc]
    reason, metadata = error_info(raised.value)
    return raised.value.code(), reason, metadata


async def kinds(db: AsyncEngine, user_id: str) -> list[tuple[str, int]]:
    async with db.connect() as connection:
        rows = await connection.execute(
            text("SELECT kind, amount FROM billing.transactions WHERE user_id = :u ORDER BY seq"),
            {"u": user_id},
        )
        return [(r.kind, r.amount) for r in rows]


# -- priced charges ---------------------------------------------------------------------


async def test_charge_without_amount_is_priced_from_the_table(
    billing: Stub, db: AsyncEngine, user_id: str, grant: int
) -> None:
    usage = billing_pb2.Usage(
        input_bytes=100,
        duration_ms=1200,
        tokens=[billing_pb2.TokenUsage(model="gpt-4o", prompt_tokens=1000, completion_tokens=500)],
    )
    first = await charge(billing, user_id, "priced-1", block_id="llm_call_block", usage=usage)
    # shipped table: 1 per run + gpt-4o* 3/1k prompt + 10/1k completion = 1 + 3 + 5
    assert (first.charged, first.amount, first.balance) == (True, 9, grant - 9)
    replay = await charge(billing, user_id, "priced-1", block_id="llm_call_block", usage=usage)
    assert (replay.charged, replay.amount, replay.transaction_id) == (
        False,
        9,
        first.transaction_id,
    )
    async with db.connect() as connection:
        stored = await connection.scalar(
            text("SELECT usage FROM billing.transactions WHERE idempotency_key = 'priced-1'")
        )
    assert stored["tokens"][0] == {
        "model": "gpt-4o",
        "prompt_tokens": 1000,
        "completion_tokens": 500,
    }
    assert stored["duration_ms"] == 1200


async def test_unknown_block_pays_the_default_and_free_block_writes_nothing(
    billing: Stub, db: AsyncEngine, user_id: str, grant: int
) -> None:
    unknown = await charge(billing, user_id, f"{user_id}-u", block_id="some_new_block")
    assert (unknown.charged, unknown.amount) == (True, 1)
    free = await charge(billing, user_id, f"{user_id}-f", block_id="text_input_block")
    assert (free.charged, free.amount, free.transaction_id, free.balance) == (
        False,
        0,
        "",
        grant - 1,
    )
    assert await kinds(db, user_id) == [("grant", grant), ("usage", -1)]


async def test_negative_usage_is_rejected_naming_the_field(billing: Stub, user_id: str) -> None:
    code, _, metadata = await refused(
        charge(billing, user_id, "neg", usage=billing_pb2.Usage(output_bytes=-1))
    )
    assert (code, metadata) == (grpc.StatusCode.INVALID_ARGUMENT, {"field": "usage.output_bytes"})


# -- refunds ------------------------------------------------------------------------------


async def test_refund_gives_back_the_charge_once_however_often_replayed(
    billing: Stub, db: AsyncEngine, user_id: str, grant: int
) -> None:
    await charge(billing, user_id, "ne-1", amount=30, execution_id="e1", graph_id="g1")
    results = await asyncio.gather(
        *(refund(billing, user_id, "ne-1", reason="lost") for _ in range(10))
    )
    assert sum(r.refunded for r in results) == 1
    assert {r.transaction_id for r in results} == {results[0].transaction_id}
    assert {r.amount for r in results} == {30}
    assert await balance(billing, user_id) == grant
    assert await kinds(db, user_id) == [("grant", grant), ("usage", -30), ("refund", 30)]


async def test_partial_refund_then_no_second_refund(
    billing: Stub, user_id: str, grant: int
) -> None:
    await charge(billing, user_id, "ne-p", amount=10)
    part = await refund(billing, user_id, "ne-p", amount=4)
    assert (part.refunded, part.amount, part.balance) == (True, 4, grant - 6)
    again = await refund(billing, user_id, "ne-p")
    assert (again.refunded, again.amount, again.transaction_id) == (False, 4, part.transaction_id)
    assert await balance(billing, user_id) == grant - 6


async def test_refund_never_exceeds_the_charge(billing: Stub, user_id: str, grant: int) -> None:
    await charge(billing, user_id, "ne-x", amount=5)
    code, reason, metadata = await refused(refund(billing, user_id, "ne-x", amount=6))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "REFUND_EXCEEDS_CHARGE")
    assert metadata["charged"] == "5"
    assert await balance(billing, user_id) == grant - 5


async def test_refund_of_an_uncharged_or_foreign_node_is_refused(
    billing: Stub, user_id: str
) -> None:
    other = f"other-{uuid.uuid4()}"
    await charge(billing, other, f"{other}-ne", amount=5)
    for key in ("never-charged", f"{other}-ne"):
        code, reason, _ = await refused(refund(billing, user_id, key))
        assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "NOT_CHARGED")
    assert await balance(billing, user_id) == await balance(billing, other) + 5


# -- execution budget ---------------------------------------------------------------------


async def test_execution_budget_caps_the_execution_and_says_by_how_much(
    billing: Stub, user_id: str, grant: int
) -> None:
    execution = str(uuid.uuid4())
    for i in range(2):
        await charge(
            billing,
            user_id,
            f"{execution}-{i}",
            amount=4,
            execution_id=execution,
            execution_budget=10,
        )
    code, reason, metadata = await refused(
        charge(
            billing,
            user_id,
            f"{execution}-2",
            amount=4,
            execution_id=execution,
            execution_budget=10,
        )
    )
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "BUDGET_EXCEEDED")
    assert metadata == {"max_credits": "10", "spent": "8", "required": "4"}
    # The registered cap holds even when a later charge leaves it out; a refund frees room.
    code, reason, _ = await refused(
        charge(billing, user_id, f"{execution}-3", amount=3, execution_id=execution)
    )
    assert reason == "BUDGET_EXCEEDED"
    await refund(billing, user_id, f"{execution}-0")
    assert (
        await charge(billing, user_id, f"{execution}-4", amount=6, execution_id=execution)
    ).charged
    assert await balance(billing, user_id) == grant - 10


async def test_concurrent_charges_never_pass_the_execution_budget(
    billing: Stub, user_id: str, grant: int
) -> None:
    execution = str(uuid.uuid4())
    results = await asyncio.gather(
        *(
            charge(
                billing,
                user_id,
                f"{execution}-{i}",
                amount=1,
                execution_id=execution,
                execution_budget=10,
            )
            for i in range(30)
        ),
        return_exceptions=True,
    )
    charged = [r for r in results if isinstance(r, billing_pb2.ChargeResponse)]
    reasons = {error_info(r)[0] for r in results if isinstance(r, grpc.aio.AioRpcError)}
    assert len(charged) == 10
    assert reasons == {"BUDGET_EXCEEDED"}
    assert await balance(billing, user_id) == grant - 10


async def test_budget_without_execution_id_is_invalid(billing: Stub, user_id: str) -> None:
    code, _, metadata = await refused(charge(billing, user_id, "nb", amount=1, execution_budget=5))
    assert (code, metadata) == (grpc.StatusCode.INVALID_ARGUMENT, {"field": "execution_id"})


async def test_budget_registered_late_counts_what_the_execution_already_spent(
    billing: Stub, user_id: str
) -> None:
    execution = str(uuid.uuid4())
    await charge(billing, user_id, f"{execution}-a", amount=7, execution_id=execution)
    _, reason, metadata = await refused(
        charge(
            billing,
            user_id,
            f"{execution}-b",
            amount=4,
            execution_id=execution,
            execution_budget=10,
        )
    )
    assert (reason, metadata["spent"]) == ("BUDGET_EXCEEDED", "7")


# -- daily cap ----------------------------------------------------------------------------


async def test_users_daily_cap_refuses_with_figures_and_can_be_lifted(
    billing: Stub, user_id: str, grant: int
) -> None:
    cap = await billing.SetDailyCap(billing_pb2.SetDailyCapRequest(user_id=user_id, daily_cap=10))
    assert (cap.daily_cap, cap.spent_today) == (10, 0)
    await charge(billing, user_id, f"{user_id}-1", amount=7)
    code, reason, metadata = await refused(charge(billing, user_id, f"{user_id}-2", amount=4))
    assert (code, reason) == (grpc.StatusCode.FAILED_PRECONDITION, "DAILY_CAP_EXCEEDED")
    assert metadata == {"daily_cap": "10", "spent_today": "7", "required": "4"}
    # A refund counts back against today's spend.
    await refund(billing, user_id, f"{user_id}-1", amount=2)
    assert (await charge(billing, user_id, f"{user_id}-3", amount=5)).charged
    lifted = await billing.SetDailyCap(billing_pb2.SetDailyCapRequest(user_id=user_id))
    assert (lifted.HasField("daily_cap"), lifted.spent_today) == (False, 10)
    assert (await charge(billing, user_id, f"{user_id}-4", amount=50)).charged
    assert await balance(billing, user_id) == grant - 60


async def test_negative_daily_cap_is_invalid(billing: Stub, user_id: str) -> None:
    code, _, metadata = await refused(
        billing.SetDailyCap(billing_pb2.SetDailyCapRequest(user_id=user_id, daily_cap=-1))
    )
    assert (code, metadata) == (grpc.StatusCode.INVALID_ARGUMENT, {"field": "daily_cap"})


# -- admin movements ----------------------------------------------------------------------


async def test_grant_and_top_up_apply_once_per_key(
    billing: Stub, db: AsyncEngine, user_id: str, grant: int
) -> None:
    first = await billing.Grant(
        billing_pb2.GrantRequest(
            user_id=user_id, idempotency_key="promo", amount=50, description="promo"
        )
    )
    replay = await billing.Grant(
        billing_pb2.GrantRequest(user_id=user_id, idempotency_key="promo", amount=50)
    )
    assert (first.applied, first.balance) == (True, grant + 50)
    assert (replay.applied, replay.transaction_id) == (False, first.transaction_id)
    top = await billing.TopUp(
        billing_pb2.TopUpRequest(user_id=user_id, idempotency_key="pay-1", amount=25)
    )
    assert (top.applied, top.balance) == (True, grant + 75)
    # The same caller key for another kind is another movement.
    assert (
        await billing.TopUp(
            billing_pb2.TopUpRequest(user_id=user_id, idempotency_key="promo", amount=1)
        )
    ).applied
    assert await kinds(db, user_id) == [
        ("grant", grant),
        ("grant", 50),
        ("top_up", 25),
        ("top_up", 1),
    ]


async def test_key_reused_with_another_amount_is_refused(billing: Stub, user_id: str) -> None:
    await billing.Grant(billing_pb2.GrantRequest(user_id=user_id, idempotency_key="k", amount=5))
    _, reason, _ = await refused(
        billing.Grant(billing_pb2.GrantRequest(user_id=user_id, idempotency_key="k", amount=6))
    )
    assert reason == "IDEMPOTENCY_KEY_REUSED"


async def test_adjustment_may_take_but_never_below_zero(
    billing: Stub, user_id: str, grant: int
) -> None:
    down = await billing.Adjust(
        billing_pb2.AdjustRequest(user_id=user_id, idempotency_key="fix", amount=-grant + 1)
    )
    assert down.balance == 1
    code, reason, metadata = await refused(
        billing.Adjust(
            billing_pb2.AdjustRequest(user_id=user_id, idempotency_key="fix-2", amount=-2)
        )
    )
    assert (code, reason, metadata["balance"]) == (
        grpc.StatusCode.FAILED_PRECONDITION,
        "INSUFFICIENT_CREDITS",
        "1",
    )


@pytest.mark.parametrize("amount", [0, -5])
async def test_grant_must_be_positive(billing: Stub, user_id: str, amount: int) -> None:
    code, _, metadata = await refused(
        billing.Grant(billing_pb2.GrantRequest(user_id=user_id, idempotency_key="z", amount=amount))
    )
    assert (code, metadata) == (grpc.StatusCode.INVALID_ARGUMENT, {"field": "amount"})


async def test_admin_key_cannot_collide_with_the_initial_grant(
    billing: Stub, user_id: str, grant: int
) -> None:
    reply = await billing.Grant(
        billing_pb2.GrantRequest(
            user_id=user_id, idempotency_key=f"initial:{user_id}", amount=grant
        )
    )
    assert reply.applied and reply.balance == 2 * grant
