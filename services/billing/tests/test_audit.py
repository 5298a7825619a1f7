"""The conservation check, and the ledger's rules under a clock and a default daily cap."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from datetime import date

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from agentloom_billing.costs import load_cost_table
from agentloom_billing.domain import ChargeRequest
from agentloom_billing.errors import DailyCapExceeded
from agentloom_billing.ledger import Ledger, check_conservation


@pytest.fixture
async def tampered(db: AsyncEngine, user_id: str) -> AsyncIterator[str]:
    """A user whose balance was edited behind the ledger's back (restored afterwards)."""
    ledger = Ledger(async_sessionmaker(db), starting_grant=100, costs=load_cost_table())
    await ledger.charge(ChargeRequest.parse(user_id=user_id, idempotency_key=user_id, amount=10))
    async with db.begin() as connection:
        await connection.execute(
            text("UPDATE billing.accounts SET balance = balance + 5 WHERE user_id = :u"),
            {"u": user_id},
        )
    yield user_id
    async with db.begin() as connection:
        await connection.execute(
            text("UPDATE billing.accounts SET balance = balance - 5 WHERE user_id = :u"),
            {"u": user_id},
        )


async def test_conservation_reports_a_balance_the_ledger_does_not_explain(
    db: AsyncEngine, tampered: str
) -> None:
    async with AsyncSession(db) as session:
        problems = await check_conservation(session)
    mine = {p.check: p for p in problems if p.subject == tampered}
    assert set(mine) == {"balance_is_sum_of_transactions", "running_balance_chains"}
    assert (
        "balance 95, grants 100, top-ups 0, usage 10"
        in mine["balance_is_sum_of_transactions"].detail
    )


async def test_conservation_holds_for_an_honest_ledger(db: AsyncEngine) -> None:
    async with AsyncSession(db) as session:
        assert await check_conservation(session) == []


async def test_default_daily_cap_resets_on_the_next_utc_day(db: AsyncEngine) -> None:
    day = [date(2030, 1, 1)]
    ledger = Ledger(
        async_sessionmaker(db),
        starting_grant=100,
        costs=load_cost_table(),
        daily_cap=5,
        today=lambda: day[0],
    )
    user = f"capped-{uuid.uuid4()}"

    def charge(key: str, amount: int) -> ChargeRequest:
        return ChargeRequest.parse(user_id=user, idempotency_key=f"{user}-{key}", amount=amount)

    await ledger.charge(charge("a", 5))
    with pytest.raises(DailyCapExceeded) as raised:
        await ledger.charge(charge("b", 1))
    assert raised.value.metadata == {"daily_cap": "5", "spent_today": "5", "required": "1"}
    day[0] = date(2030, 1, 2)
    assert (await ledger.charge(charge("b", 5))).balance == 90
    own_cap, spent = await ledger.set_daily_cap(user, None)
    assert (own_cap, spent) == (5, 5)
