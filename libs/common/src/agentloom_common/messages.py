"""The versioned envelope every bus message carries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, Field


def new_id() -> str:
    return str(uuid.uuid4())


class Envelope(BaseModel):
    """Fields shared by every message: a consumer rejects a `schema_version` it does not know."""

    schema_version: int = 1
    message_id: str = Field(default_factory=new_id)
    type: str
    attempt: int = 1
    traceparent: str | None = None
    sent_at: datetime = Field(default_factory=lambda: datetime.now(UTC))


class GraphChanged(Envelope):
    """A graph got a new version, another active version, or was deleted (graphs service ->
    whoever holds its versions: they ask again before running it)."""

    type: Literal["graph.changed"] = "graph.changed"
    user_id: str
    graph_id: str
