"""The conservation check: the ledger explains every balance, for every user.

Any test (here, end to end, after fault injection) can call `check_conservation` with a
session on the billing database and assert it returns no problem.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class ConservationProblem:
    """One broken invariant: which check, for whom (a user, a key or an execution), what."""

    check: str
    subject: str
    detail: str

    def __str__(self) -> str:
        return f"{self.check} [{self.subject}]: {self.detail}"


# Each query returns (subject, detail) rows, one per violation.
_CHECKS: dict[str, str] = {
    # grants + top-ups - usage + refunds + adjustments (signed amounts) = balance.
    "balance_is_sum_of_transactions": """
        SELECT a.user_id,
               format('balance %s, grants %s, top-ups %s, usage %s, refunds %s, adjustments %s',
                      a.balance,
                      COALESCE(SUM(t.amount) FILTER (WHERE t.kind = 'grant'), 0),
                      COALESCE(SUM(t.amount) FILTER (WHERE t.kind = 'top_up'), 0),
                      COALESCE(-SUM(t.amount) FILTER (WHERE t.kind = 'usage'), 0),
                      COALESCE(SUM(t.amount) FILTER (WHERE t.kind = 'refund'), 0),
                      COALESCE(SUM(t.amount) FILTER (WHERE t.kind = 'adjustment'), 0))
        FROM billing.accounts a LEFT JOIN billing.transactions t USING (user_id)
        GROUP BY a.user_id, a.balance
        HAVING a.balance <> COALESCE(SUM(t.amount), 0)
    """,
    "never_negative": """
        SELECT user_id, format('balance %s, lowest balance_after %s', balance, lowest)
        FROM (SELECT a.user_id, a.balance, MIN(t.balance_after) AS lowest
              FROM billing.accounts a LEFT JOIN billing.transactions t USING (user_id)
              GROUP BY a.user_id, a.balance) s
        WHERE balance < 0 OR lowest < 0
    """,
    # Each row's balance_after is the previous one's plus its amount, the last one the balance.
    "running_balance_chains": """
        SELECT user_id, format('row %s: balance_after %s, previous %s, amount %s',
                               id, balance_after, previous, amount)
        FROM (SELECT user_id, id, amount, balance_after,
                     COALESCE(LAG(balance_after) OVER w, 0) AS previous
              FROM billing.transactions WINDOW w AS (PARTITION BY user_id ORDER BY seq)) s
        WHERE balance_after <> previous + amount
        UNION ALL
        SELECT a.user_id, format('balance %s, last balance_after %s', a.balance, t.balance_after)
        FROM billing.accounts a
        JOIN LATERAL (SELECT balance_after FROM billing.transactions
                      WHERE user_id = a.user_id ORDER BY seq DESC LIMIT 1) t ON true
        WHERE t.balance_after <> a.balance
    """,
    "refund_at_most_the_charge": """
        SELECT r.idempotency_key, format('refunded %s, charged %s', r.amount, -u.amount)
        FROM billing.transactions r
        LEFT JOIN billing.transactions u
          ON u.idempotency_key = substr(r.idempotency_key, 8) AND u.kind = 'usage'
        WHERE r.kind = 'refund' AND (u.id IS NULL OR r.amount > -u.amount
                                     OR r.user_id <> u.user_id)
    """,
    "execution_spend_matches_ledger": """
        SELECT b.execution_id, format('spent %s, ledger says %s', b.spent, COALESCE(s.net, 0))
        FROM billing.execution_budgets b
        LEFT JOIN (SELECT execution_id, -SUM(amount) AS net FROM billing.transactions
                   WHERE kind IN ('usage', 'refund') GROUP BY execution_id) s
          USING (execution_id)
        WHERE b.spent <> COALESCE(s.net, 0)
    """,
}


async def check_conservation(session: AsyncSession) -> list[ConservationProblem]:
    """Every violation of the ledger's invariants across all users; [] when all hold."""
    problems: list[ConservationProblem] = []
    for check, query in _CHECKS.items():
        for subject, detail in (await session.execute(text(query))).all():
            problems.append(ConservationProblem(check, str(subject), str(detail)))
    return problems
