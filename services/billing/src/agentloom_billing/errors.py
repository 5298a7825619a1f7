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
