"""Billing failures that cross the service boundary, with stable ErrorInfo reasons."""

from __future__ import annotations

from agentloom_common.errors import FailedPrecondition, Unavailable


class InsufficientCredits(FailedPrecondition):
    """The balance does not cover the charge; metadata says by how much."""

    reason = "INSUFFICIENT_CREDITS"

    def __init__(self, *, balance: int, required: int) -> None:
        super().__init__(
            f"insufficient credits: balance {balance}, required {required}",
            metadata={"balance": str(balance), "required": str(required)},
        )


class IdempotencyKeyReused(FailedPrecondition):
    """The key already charged another user: a caller bug, answered without that user's data."""

    reason = "IDEMPOTENCY_KEY_REUSED"


class DatabaseUnavailable(Unavailable):
    """PostgreSQL cannot be reached: the call changed nothing and may be retried."""

    reason = "DATABASE_UNAVAILABLE"


class BudgetExceeded(FailedPrecondition):
    """The charge would take the execution past its credit cap (`max_credits`)."""

    reason = "BUDGET_EXCEEDED"

    def __init__(self, *, max_credits: int, spent: int, required: int) -> None:
        super().__init__(
            f"execution budget exceeded: spent {spent} of {max_credits}, required {required}",
            metadata={
                "max_credits": str(max_credits),
                "spent": str(spent),
                "required": str(required),
            },
        )


class DailyCapExceeded(FailedPrecondition):
    """The charge would take the user past their daily cap (UTC days)."""

    reason = "DAILY_CAP_EXCEEDED"

    def __init__(self, *, daily_cap: int, spent_today: int, required: int) -> None:
        super().__init__(
            f"daily cap exceeded: spent {spent_today} of {daily_cap} today, required {required}",
            metadata={
                "daily_cap": str(daily_cap),
                "spent_today": str(spent_today),
                "required": str(required),
            },
        )


class NotCharged(FailedPrecondition):
    """A refund names a node execution this user was never charged for."""

    reason = "NOT_CHARGED"


class RefundExceedsCharge(FailedPrecondition):
    """A refund asks for more than the node execution was charged."""

    reason = "REFUND_EXCEEDS_CHARGE"

    def __init__(self, *, charged: int, requested: int) -> None:
        super().__init__(
            f"refund of {requested} exceeds the charge of {charged}",
            metadata={"charged": str(charged), "requested": str(requested), "field": "amount"},
        )
