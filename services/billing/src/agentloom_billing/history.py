"""Reading the ledger: a user's transactions (newest first, cursor pages) and their usage
grouped by graph or by execution. Plain async functions taking `session=`."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any, Generic, TypeVar

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from agentloom_billing.domain import TransactionKind
from agentloom_billing.tables import LedgerEntry
from agentloom_common.errors import InvalidArgument

T = TypeVar("T")
V = TypeVar("V", int, str)

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100


class GroupBy(StrEnum):
    GRAPH = "graph"
    EXECUTION = "execution"


@dataclass(frozen=True)
class TransactionQuery:
    """A page request of the history: `size` rows after the cursor in `token`, filtered."""

    size: int = DEFAULT_PAGE_SIZE
    token: str = ""
    kind: TransactionKind | None = None
    graph_id: str | None = None
    execution_id: str | None = None


@dataclass(frozen=True)
class UsageQuery:
    group_by: GroupBy
    size: int = DEFAULT_PAGE_SIZE
    token: str = ""
    graph_id: str | None = None


@dataclass(frozen=True)
class Transaction:
    id: uuid.UUID
    kind: TransactionKind
    amount: int
    balance_after: int
    graph_id: str | None
    execution_id: str | None
    node_id: str | None
    block_id: str | None
    node_execution_id: str | None
    description: str | None
    usage: dict[str, Any] | None
    created_at: datetime


@dataclass(frozen=True)
class UsageGroup:
    graph_id: str | None
    execution_id: str | None
    charged: int
    refunded: int
    node_executions: int
    last_charged_at: datetime | None

    @property
    def net(self) -> int:
        return self.charged - self.refunded


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_page_token: str | None


def page_size(requested: int) -> int:
    """0 means the default; past the maximum is clamped, negative refused."""
    if requested < 0:
        raise InvalidArgument("page_size must not be negative", metadata={"field": "page_size"})
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode_token(value: str | int) -> str:
    return base64.urlsafe_b64encode(json.dumps({"after": value}).encode()).decode().rstrip("=")


def decode_token(token: str, kind: type[V]) -> V | None:
    """The cursor in a page token ('' for the first page); a forged one is INVALID_ARGUMENT."""
    if not token:
        return None
    try:
        decoded = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        value = decoded["after"]
    except (ValueError, TypeError, KeyError, binascii.Error):
        value = None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise InvalidArgument("page_token is not valid", metadata={"field": "page_token"})
    return value


async def list_transactions(
    session: AsyncSession, *, user_id: str, query: TransactionQuery
) -> Page[Transaction]:
    """The user's transactions, newest first, filtered; keyset pages on `seq`."""
    after = decode_token(query.token, int)
    statement = select(LedgerEntry).where(LedgerEntry.user_id == user_id)
    if after is not None:
        statement = statement.where(LedgerEntry.seq < after)
    if query.kind is not None:
        statement = statement.where(LedgerEntry.kind == query.kind.value)
    if query.graph_id is not None:
        statement = statement.where(LedgerEntry.graph_id == query.graph_id)
    if query.execution_id is not None:
        statement = statement.where(LedgerEntry.execution_id == query.execution_id)
    statement = statement.order_by(LedgerEntry.seq.desc()).limit(query.size + 1)
    rows = list(await session.scalars(statement))
    more = len(rows) > query.size
    rows = rows[: query.size]
    return Page(
        items=[_transaction(row) for row in rows],
        next_page_token=encode_token(rows[-1].seq) if more else None,
    )


def _transaction(row: LedgerEntry) -> Transaction:
    kind = TransactionKind(row.kind)
    node_execution_id = None
    if kind is TransactionKind.USAGE:
        node_execution_id = row.idempotency_key
    elif kind is TransactionKind.REFUND:
        node_execution_id = row.idempotency_key.removeprefix(f"{kind.value}:")
    return Transaction(
        id=row.id,
        kind=kind,
        amount=row.amount,
        balance_after=row.balance_after,
        graph_id=row.graph_id,
        execution_id=row.execution_id,
        node_id=row.node_id,
        block_id=row.block_id,
        node_execution_id=node_execution_id,
        description=row.description,
        usage=row.usage,
        created_at=row.created_at,
    )


async def usage(session: AsyncSession, *, user_id: str, query: UsageQuery) -> Page[UsageGroup]:
    """Charged, refunded and node count per graph (or execution), ordered by its id.

    Rows without a graph (or execution) id, such as charges made outside an execution, are
    not grouped.
    """
    group_by, size = query.group_by, query.size
    after = decode_token(query.token, str)
    key = LedgerEntry.graph_id if group_by is GroupBy.GRAPH else LedgerEntry.execution_id
    is_usage = LedgerEntry.kind == TransactionKind.USAGE.value
    conditions: list[ColumnElement[bool]] = [
        LedgerEntry.user_id == user_id,
        LedgerEntry.kind.in_([TransactionKind.USAGE.value, TransactionKind.REFUND.value]),
        key.is_not(None),
    ]
    if query.graph_id is not None:
        conditions.append(LedgerEntry.graph_id == query.graph_id)
    if after is not None:
        conditions.append(key > after)
    statement = (
        select(
            key.label("key"),
            func.max(LedgerEntry.graph_id).label("graph_id"),
            func.coalesce(-func.sum(LedgerEntry.amount).filter(is_usage), 0).label("charged"),
            func.coalesce(func.sum(LedgerEntry.amount).filter(~is_usage), 0).label("refunded"),
            func.count().filter(is_usage).label("node_executions"),
            func.max(LedgerEntry.created_at).filter(is_usage).label("last_charged_at"),
        )
        .where(*conditions)
        .group_by(key)
        .order_by(key)
        .limit(size + 1)
    )
    rows = list((await session.execute(statement)).all())
    more = len(rows) > size
    rows = rows[:size]
    groups = [
        UsageGroup(
            graph_id=row.graph_id,
            execution_id=row.key if group_by is GroupBy.EXECUTION else None,
            charged=int(row.charged),
            refunded=int(row.refunded),
            node_executions=row.node_executions,
            last_charged_at=row.last_charged_at,
        )
        for row in rows
    ]
    return Page(items=groups, next_page_token=encode_token(rows[-1].key) if more else None)
