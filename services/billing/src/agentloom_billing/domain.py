"""Billing rules, free of I/O: what a valid request is and when a balance suffices."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from enum import StrEnum

from agentloom_common.errors import InvalidArgument

# Ids (user ids, idempotency keys, graph/node ids) are opaque strings up to this length.
MAX_ID_LENGTH = 200


class TransactionKind(StrEnum):
    """What a ledger row records. Usage rows are negative, grants, refunds and top-ups not."""

    GRANT = "grant"
    USAGE = "usage"
    REFUND = "refund"
    TOP_UP = "top_up"
    ADJUSTMENT = "adjustment"


# Keys the service writes itself (`grant:initial:<user>` and the like) start with a kind
# other than usage; a charge may not use them, or it could block another user's grant.
RESERVED_KEY_PREFIXES = tuple(f"{kind}:" for kind in TransactionKind if kind != "usage")


def initial_grant_key(user_id: str) -> str:
    """Idempotency key of the grant a new account opens with: at most one per user."""
    return f"grant:initial:{user_id}"


def require_id(value: str, field: str) -> str:
    """Return a required id; reject a blank or over-long one."""
    if not value.strip():
        raise InvalidArgument(f"{field} is required", metadata={"field": field})
    return _check_length(value, field)


def optional_id(value: str, field: str) -> str | None:
    """Return an optional id, None when empty (proto3's "absent")."""
    return _check_length(value, field) if value else None


def _check_length(value: str, field: str) -> str:
    if len(value) > MAX_ID_LENGTH:
        raise InvalidArgument(
            f"{field} is longer than {MAX_ID_LENGTH} characters", metadata={"field": field}
        )
    return value


def validate_amount(amount: int) -> int:
    """Amounts are credits to take: zero or more."""
    if amount < 0:
        raise InvalidArgument(
            f"amount must not be negative, got {amount}", metadata={"field": "amount"}
        )
    return amount


def is_sufficient(balance: int, amount: int) -> bool:
    """Whether the balance covers `amount`; for amount 0, whether any credit is left."""
    return balance > 0 if amount == 0 else balance >= amount


@dataclass(frozen=True)
class ChargeRequest:
    """A validated charge for one node execution (the idempotency key)."""

    user_id: str
    idempotency_key: str
    amount: int
    graph_id: str | None = None
    execution_id: str | None = None
    node_id: str | None = None
    block_id: str | None = None

    @classmethod
    def parse(
        cls,
        *,
        user_id: str,
        idempotency_key: str,
        amount: int,
        graph_id: str = "",
        execution_id: str = "",
        node_id: str = "",
        block_id: str = "",
    ) -> ChargeRequest:
        """Validate raw fields (empty strings meaning absent) into a request."""
        key = require_id(idempotency_key, "idempotency_key")
        if key.startswith(RESERVED_KEY_PREFIXES):
            raise InvalidArgument(
                f"idempotency_key must not start with {key.split(':', 1)[0]!r}:",
                metadata={"field": "idempotency_key"},
            )
        return cls(
            user_id=require_id(user_id, "user_id"),
            idempotency_key=key,
            amount=validate_amount(amount),
            graph_id=optional_id(graph_id, "graph_id"),
            execution_id=optional_id(execution_id, "execution_id"),
            node_id=optional_id(node_id, "node_id"),
            block_id=optional_id(block_id, "block_id"),
        )


@dataclass(frozen=True)
class BalanceCheck:
    sufficient: bool
    balance: int


@dataclass(frozen=True)
class ChargeOutcome:
    """A charge's ledger row and the balance after it; `charged` is False for a replay."""

    transaction_id: uuid.UUID
    balance: int
    charged: bool


@dataclass(frozen=True)
class Shortfall:
    """A charge refused because the balance is below the amount."""

    balance: int
    required: int
