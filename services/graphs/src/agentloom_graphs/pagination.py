"""Cursor pagination of graph lists: page sizes and opaque page tokens."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime

from agentloom_common.errors import InvalidArgument

DEFAULT_PAGE_SIZE = 50
MAX_PAGE_SIZE = 100


@dataclass(frozen=True)
class Cursor:
    """Where the previous page stopped: lists run newest first by (created_at, id)."""

    created_at: datetime
    graph_id: uuid.UUID


def page_size(requested: int) -> int:
    """0 means the default; more than the maximum is cut to the maximum."""
    if requested < 0:
        raise InvalidArgument("page_size must not be negative", reason="INVALID_PAGE_SIZE")
    return min(requested or DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE)


def encode_token(cursor: Cursor) -> str:
    raw = json.dumps([cursor.created_at.isoformat(), str(cursor.graph_id)])
    return base64.urlsafe_b64encode(raw.encode()).decode().rstrip("=")


def decode_token(token: str) -> Cursor | None:
    """The cursor a token stands for; None for the first page. A forged token is refused."""
    if not token:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        created_at, graph_id = json.loads(raw)
        cursor = Cursor(datetime.fromisoformat(created_at), uuid.UUID(graph_id))
    except (binascii.Error, ValueError, TypeError, AttributeError):
        raise InvalidArgument("page_token is not valid", reason="INVALID_PAGE_TOKEN") from None
    if cursor.created_at.tzinfo is None:
        raise InvalidArgument("page_token is not valid", reason="INVALID_PAGE_TOKEN")
    return cursor
