"""The billing contract through a real server, channel and database."""

from __future__ import annotations

import asyncio
import uuid
from typing import TYPE_CHECKING, Any

import grpc
import pytest
from sqlalchemy import Row, text
from sqlalchemy.ext.asyncio import AsyncEngine

from agentloom.billing.v1 import billing_pb2
from agentloom_common.errors import error_info

if TYPE_CHECKING:
    from agentloom.billing.v1.billing_pb2_grpc import BillingServiceAsyncStub as Stub

pytestmark = pytest.mark.usefixtures("ledger_balanced")


async def ledger(db: AsyncEngine, user_id: str) -> list[Row[Any]]:
    async with db.connect() as connection:
        result = await connection.execute(
            text(
                "SELECT id, kind, amount, balance_after, idempotency_key, graph_id,"
                " execution_id, node_id, block_id FROM billing.transactions"
                " WHERE user_id = :user_id ORDER BY created_at, balance_after DESC"
            ),
            {"user_id": user_id},
        )
        return list(result.all())


async def charge(billing: Stub, user_id: str, key: str, amount: int) -> billing_pb2.ChargeResponse:
    return await billing.Charge(
        billing_pb2.ChargeRequest(user_id=user_id, idempotency_key=key, amount=amount)
    )


async def balance(billing: Stub, user_id: str) -> int:
    return (await billing.GetBalance(billing_pb2.GetBalanceRequest(user_id=user_id))).balance


def is_insufficient(error: BaseException) -> bool:
    return (
        isinstance(error, grpc.aio.AioRpcError)
        and error.code() == grpc.StatusCode.FAILED_PRECONDITION
        and error_info(error)[0] == "INSUFFICIENT_CREDITS"
    )


async def test_new_user_gets_the_starting_grant(
    billing: Stub, db: AsyncEngine, user_id: str, grant: int
) -> None:
    assert await balance(billing, user_id) == grant
    rows = await ledger(db, user_id)
    assert [(r.kind, r.amount, r.balance_after, r.idempotency_key) for r in rows] == [
        ("grant", grant, grant, f"grant:initial:{user_id}")
    ]


async def test_concurrent_first_calls_open_one_account(
    billing: Stub, db: AsyncEngine, user_id: str, grant: int
) -> None:
    calls = [balance(billing, user_id) for _ in range(5)]
    calls += [
        billing.CheckBalance(billing_pb2.CheckBalanceRequest(user_id=user_id, amount=1))
        for _ in range(5)
    ]
    results = await asyncio.gather(*calls)
    assert results[:5] == [grant] * 5
    assert all(r.sufficient and r.balance == grant for r in results[5:])
    assert [r.kind for r in await ledger(db, user_id)] == ["grant"]


async def test_charge_decrements_the_balance_and_records_the_node(
    billing: Stub, db: AsyncEngine, user_id: str, grant: int
) -> None:
    key = str(uuid.uuid4())
    response = await billing.Charge(
        billing_pb2.ChargeRequest(
            user_id=user_id,
            idempotency_key=key,
            amount=15,
            graph_id="g1",
            execution_id="e1",
            node_id="n1",
            block_id="b1",
        )
    )
    assert response.charged
    assert response.balance == grant - 15
    assert await balance(billing, user_id) == grant - 15
    usage = (await ledger(db, user_id))[-1]
    assert str(usage.id) == response.transaction_id
    assert (usage.kind, usage.amount, usage.balance_after, usage.idempotency_key) == (
        "usage",
        -15,
        grant - 15,
        key,
    )
    assert (usage.graph_id, usage.execution_id, usage.node_id, usage.block_id) == (
        "g1",
        "e1",
        "n1",
        "b1",
    )


async def test_replayed_key_returns_the_first_charge_without_charging(
    billing: Stub, db: AsyncEngine, user_id: str, grant: int
) -> None:
    first = await charge(billing, user_id, "node-exec-1", 10)
    await charge(billing, user_id, "node-exec-2", 5)
    replay = await charge(billing, user_id, "node-exec-1", 10)
    assert replay.charged is False
    assert replay.transaction_id == first.transaction_id
    assert replay.balance == grant - 15
    assert len(await ledger(db, user_id)) == 3


async def test_same_key_charged_concurrently_charges_once(
    billing: Stub, db: AsyncEngine, user_id: str, grant: int
) -> None:
    key = str(uuid.uuid4())
    responses = await asyncio.gather(*(charge(billing, user_id, key, 7) for _ in range(10)))
    assert sum(r.charged for r in responses) == 1
    assert {r.transaction_id for r in responses} == {responses[0].transaction_id}
    assert await balance(billing, user_id) == grant - 7
    assert [r.kind for r in await ledger(db, user_id)] == ["grant", "usage"]


async def test_new_users_concurrent_first_charges_all_land_on_one_account(
    billing: Stub, db: AsyncEngine, user_id: str, grant: int
) -> None:
    responses = await asyncio.gather(
        *(charge(billing, user_id, f"{user_id}-{i}", 2) for i in range(10))
    )
    assert all(r.charged for r in responses)
    assert await balance(billing, user_id) == grant - 20
    assert [r.kind for r in await ledger(db, user_id)].count("grant") == 1


async def test_concurrent_charges_never_overdraw(
    billing: Stub, db: AsyncEngine, user_id: str, grant: int
) -> None:
    await charge(billing, user_id, f"setup-{user_id}", grant - 40)
    results = await asyncio.gather(
        *(charge(billing, user_id, f"{user_id}-{i}", 1) for i in range(100)),
        return_exceptions=True,
    )
    charged = [r for r in results if isinstance(r, billing_pb2.ChargeResponse) and r.charged]
    refused = [r for r in results if isinstance(r, BaseException) and is_insufficient(r)]
    assert (len(charged), len(refused)) == (40, 60)
    assert sorted(r.balance for r in charged) == list(range(40))
    assert await balance(billing, user_id) == 0
    # Each usage row saw the balance its charge left, so none shares a balance_after.
    rows = await ledger(db, user_id)
    assert sorted(r.balance_after for r in rows if r.kind == "usage") == list(range(41))


async def test_insufficient_credits_says_balance_and_required_and_records_nothing(
    billing: Stub, db: AsyncEngine, user_id: str, grant: int
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await charge(billing, user_id, "too-much", grant + 1)
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(raised.value) == (
        "INSUFFICIENT_CREDITS",
        {"balance": str(grant), "required": str(grant + 1)},
    )
    # The refused first call still opened the account; the refusal itself left no row.
    assert [r.kind for r in await ledger(db, user_id)] == ["grant"]
    assert await balance(billing, user_id) == grant


async def test_replay_after_the_balance_ran_out_is_still_a_replay(
    billing: Stub, user_id: str, grant: int
) -> None:
    first = await charge(billing, user_id, "everything", grant)
    replay = await charge(billing, user_id, "everything", grant)
    assert (replay.charged, replay.transaction_id, replay.balance) == (
        False,
        first.transaction_id,
        0,
    )


async def test_negative_amount_is_rejected_and_changes_nothing(
    billing: Stub, db: AsyncEngine, user_id: str, grant: int
) -> None:
    await charge(billing, user_id, "before", 3)
    before = await ledger(db, user_id)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await charge(billing, user_id, "negative", -5)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(raised.value) == ("INVALID_ARGUMENT", {"field": "amount"})
    assert await ledger(db, user_id) == before
    assert await balance(billing, user_id) == grant - 3


@pytest.mark.parametrize(
    ("user", "key", "field"),
    [("", "k", "user_id"), (" ", "k", "user_id"), ("u", "", "idempotency_key")],
)
async def test_charge_requires_user_and_key(
    billing: Stub, db: AsyncEngine, user: str, key: str, field: str
) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await charge(billing, user, key, 1)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert error_info(raised.value)[1] == {"field": field}
    assert await ledger(db, user) == []


async def test_charge_may_not_use_another_users_grant_key(
    billing: Stub, db: AsyncEngine, user_id: str, grant: int
) -> None:
    victim = f"victim-{uuid.uuid4()}"
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await charge(billing, user_id, f"grant:initial:{victim}", 1)
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert await balance(billing, victim) == grant


async def test_key_used_by_another_user_is_refused_without_their_data(
    billing: Stub, db: AsyncEngine, user_id: str, grant: int
) -> None:
    other = f"other-{uuid.uuid4()}"
    await charge(billing, other, "shared-key", 50)
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await charge(billing, user_id, "shared-key", 1)
    assert raised.value.code() == grpc.StatusCode.FAILED_PRECONDITION
    assert error_info(raised.value) == ("IDEMPOTENCY_KEY_REUSED", {"field": "idempotency_key"})
    assert await balance(billing, other) == grant - 50
    assert await balance(billing, user_id) == grant


async def test_zero_charge_records_a_zero_row_even_at_zero_balance(
    billing: Stub, db: AsyncEngine, user_id: str, grant: int
) -> None:
    await charge(billing, user_id, "all", grant)
    free = await charge(billing, user_id, "free", 0)
    assert (free.charged, free.balance) == (True, 0)
    replay = await charge(billing, user_id, "free", 0)
    assert (replay.charged, replay.transaction_id) == (False, free.transaction_id)
    assert [(r.kind, r.amount) for r in await ledger(db, user_id)][-1] == ("usage", 0)


async def test_check_balance_compares_with_the_amount(
    billing: Stub, user_id: str, grant: int
) -> None:
    await charge(billing, user_id, "spend", grant - 10)

    async def check(amount: int) -> tuple[bool, int]:
        response = await billing.CheckBalance(
            billing_pb2.CheckBalanceRequest(user_id=user_id, amount=amount)
        )
        return response.sufficient, response.balance

    assert await check(10) == (True, 10)
    assert await check(11) == (False, 10)
    assert await check(0) == (True, 10)
    await charge(billing, user_id, "rest", 10)
    assert await check(0) == (False, 0)


async def test_check_balance_rejects_negative_amount_and_empty_user(
    billing: Stub, user_id: str
) -> None:
    for request, field in [
        (billing_pb2.CheckBalanceRequest(user_id=user_id, amount=-1), "amount"),
        (billing_pb2.CheckBalanceRequest(user_id="", amount=1), "user_id"),
    ]:
        with pytest.raises(grpc.aio.AioRpcError) as raised:
            await billing.CheckBalance(request)
        assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert error_info(raised.value)[1] == {"field": field}


async def test_get_balance_rejects_empty_user(billing: Stub) -> None:
    with pytest.raises(grpc.aio.AioRpcError) as raised:
        await billing.GetBalance(billing_pb2.GetBalanceRequest(user_id=""))
    assert raised.value.code() == grpc.StatusCode.INVALID_ARGUMENT


async def test_free_blocks_are_the_ones_whose_tokenless_charge_records_nothing(
    billing: Stub, user_id: str
) -> None:
    asked = ["pass_through_block", "text_template_block", "output_block", "no_such_block"]
    reply = await billing.ListFreeBlocks(billing_pb2.ListFreeBlocksRequest(block_ids=asked))
    assert sorted(reply.block_ids) == ["output_block", "pass_through_block"]
    for block_id in asked:
        charged = await billing.Charge(
            billing_pb2.ChargeRequest(
                user_id=user_id,
                idempotency_key=f"free-check:{user_id}:{block_id}",
                block_id=block_id,
                usage=billing_pb2.Usage(input_bytes=5000, output_bytes=5000, duration_ms=3000),
            )
        )
        assert (charged.amount == 0) == (block_id in reply.block_ids), block_id
