"""Billing rules, free of I/O: what a valid request is and when a balance suffices."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, replace
from enum import StrEnum
from typing import Any

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


# Bounds on what a request may carry, so a sum of prices can never overflow a bigint.
MAX_CREDITS = 10**12
MAX_USAGE = 10**15
MAX_TOKEN_ENTRIES = 64


def _bounded(value: int, field: str, *, limit: int = MAX_CREDITS, signed: bool = False) -> int:
    low = -limit if signed else 0
    if not low <= value <= limit:
        raise InvalidArgument(
            f"{field} must be between {low} and {limit}, got {value}", metadata={"field": field}
        )
    return value


@dataclass(frozen=True)
class TokenCount:
    """LLM tokens one node execution used with one model."""

    model: str
    prompt: int = 0
    completion: int = 0


@dataclass(frozen=True)
class UsageFigures:
    """What one node execution used, as the runner measured it."""

    input_bytes: int = 0
    output_bytes: int = 0
    duration_ms: int = 0
    tokens: tuple[TokenCount, ...] = ()

    @classmethod
    def parse(
        cls,
        *,
        input_bytes: int = 0,
        output_bytes: int = 0,
        duration_ms: int = 0,
        tokens: tuple[tuple[str, int, int], ...] = (),
    ) -> UsageFigures:
        """Validate raw figures: none negative or absurd, at most MAX_TOKEN_ENTRIES models."""
        if len(tokens) > MAX_TOKEN_ENTRIES:
            raise InvalidArgument(
                f"at most {MAX_TOKEN_ENTRIES} token entries", metadata={"field": "usage.tokens"}
            )
        return cls(
            input_bytes=_bounded(input_bytes, "usage.input_bytes", limit=MAX_USAGE),
            output_bytes=_bounded(output_bytes, "usage.output_bytes", limit=MAX_USAGE),
            duration_ms=_bounded(duration_ms, "usage.duration_ms", limit=MAX_USAGE),
            tokens=tuple(
                TokenCount(
                    model=require_id(model, "usage.tokens.model"),
                    prompt=_bounded(prompt, "usage.tokens.prompt_tokens", limit=MAX_USAGE),
                    completion=_bounded(
                        completion, "usage.tokens.completion_tokens", limit=MAX_USAGE
                    ),
                )
                for model, prompt, completion in tokens
            ),
        )

    def as_json(self) -> dict[str, Any]:
        """The figures as stored on the usage row (zero fields left out)."""
        stored: dict[str, Any] = {
            name: value
            for name, value in (
                ("input_bytes", self.input_bytes),
                ("output_bytes", self.output_bytes),
                ("duration_ms", self.duration_ms),
            )
            if value
        }
        if self.tokens:
            stored["tokens"] = [
                {"model": t.model, "prompt_tokens": t.prompt, "completion_tokens": t.completion}
                for t in self.tokens
            ]
        return stored


@dataclass(frozen=True)
class ChargeRequest:
    """A validated charge for one node execution (the idempotency key).

    `amount` None: price `usage` for `block_id` from the cost table.
    """

    user_id: str
    idempotency_key: str
    amount: int | None
    graph_id: str | None = None
    execution_id: str | None = None
    node_id: str | None = None
    block_id: str | None = None
    usage: UsageFigures = UsageFigures()
    execution_budget: int | None = None

    @classmethod
    def parse(
        cls,
        *,
        user_id: str,
        idempotency_key: str,
        amount: int | None,
        graph_id: str = "",
        execution_id: str = "",
        node_id: str = "",
        block_id: str = "",
        usage: UsageFigures | None = None,
        execution_budget: int | None = None,
    ) -> ChargeRequest:
        """Validate raw fields (empty strings meaning absent) into a request."""
        key = require_id(idempotency_key, "idempotency_key")
        if key.startswith(RESERVED_KEY_PREFIXES):
            raise InvalidArgument(
                f"idempotency_key must not start with {key.split(':', 1)[0]!r}:",
                metadata={"field": "idempotency_key"},
            )
        execution = optional_id(execution_id, "execution_id")
        if execution_budget is not None:
            _bounded(execution_budget, "execution_budget")
            if execution is None:
                raise InvalidArgument(
                    "execution_budget needs execution_id", metadata={"field": "execution_id"}
                )
        return cls(
            user_id=require_id(user_id, "user_id"),
            idempotency_key=key,
            amount=None if amount is None else _bounded(validate_amount(amount), "amount"),
            graph_id=optional_id(graph_id, "graph_id"),
            execution_id=execution,
            node_id=optional_id(node_id, "node_id"),
            block_id=optional_id(block_id, "block_id"),
            usage=usage or UsageFigures(),
            execution_budget=execution_budget,
        )

    def priced(self, amount: int) -> ChargeRequest:
        """This charge with its amount set (from the cost table)."""
        return replace(self, amount=amount)


@dataclass(frozen=True)
class RefundRequest:
    """Give back (part of) one node execution's charge, at most once."""

    user_id: str
    node_execution_id: str
    amount: int | None
    reason: str | None

    @classmethod
    def parse(
        cls, *, user_id: str, node_execution_id: str, amount: int | None, reason: str
    ) -> RefundRequest:
        return cls(
            user_id=require_id(user_id, "user_id"),
            node_execution_id=require_id(node_execution_id, "node_execution_id"),
            amount=None if amount is None else _bounded(amount, "amount"),
            reason=_description(reason, "reason"),
        )

    @property
    def key(self) -> str:
        return refund_key(self.node_execution_id)


@dataclass(frozen=True)
class CreditRequest:
    """An admin grant, top-up or (signed) adjustment under the caller's idempotency key."""

    user_id: str
    kind: TransactionKind
    idempotency_key: str
    amount: int
    description: str | None

    @classmethod
    def parse(
        cls,
        *,
        kind: TransactionKind,
        user_id: str,
        idempotency_key: str,
        amount: int,
        description: str,
    ) -> CreditRequest:
        signed = kind is TransactionKind.ADJUSTMENT
        if not signed and amount <= 0:
            raise InvalidArgument(
                f"amount must be positive, got {amount}", metadata={"field": "amount"}
            )
        return cls(
            user_id=require_id(user_id, "user_id"),
            kind=kind,
            idempotency_key=require_id(idempotency_key, "idempotency_key"),
            amount=_bounded(amount, "amount", signed=signed),
            description=_description(description, "description"),
        )

    @property
    def key(self) -> str:
        """Stored under the kind's prefix, so it can never collide with a node's charge."""
        return f"{self.kind.value}:admin:{self.idempotency_key}"


MAX_DESCRIPTION = 500


def _description(value: str, field: str) -> str | None:
    if len(value) > MAX_DESCRIPTION:
        raise InvalidArgument(
            f"{field} is longer than {MAX_DESCRIPTION} characters", metadata={"field": field}
        )
    return value or None


def refund_key(node_execution_id: str) -> str:
    """Idempotency key of a node execution's refund: at most one per node execution."""
    return f"{TransactionKind.REFUND.value}:{node_execution_id}"


def validate_daily_cap(daily_cap: int | None) -> int | None:
    return None if daily_cap is None else _bounded(daily_cap, "daily_cap")


@dataclass(frozen=True)
class BalanceCheck:
    sufficient: bool
    balance: int


@dataclass(frozen=True)
class ChargeOutcome:
    """A charge's ledger row and the balance after it; `charged` is False for a replay."""

    transaction_id: uuid.UUID | None
    balance: int
    charged: bool
    amount: int


@dataclass(frozen=True)
class RefundOutcome:
    """A refund's ledger row; `refunded` is False for a replay."""

    transaction_id: uuid.UUID
    amount: int
    balance: int
    refunded: bool


@dataclass(frozen=True)
class CreditOutcome:
    """An admin movement's ledger row; `applied` is False for a replay."""

    transaction_id: uuid.UUID
    balance: int
    applied: bool
