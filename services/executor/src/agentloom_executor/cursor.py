"""Page tokens of the list endpoints: the last row's (created_at, id), opaque to clients."""

from __future__ import annotations

import base64
import json
import uuid
from datetime import datetime

from agentloom_common.errors import InvalidArgument


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    raw = json.dumps([created_at.isoformat(), str(row_id)]).encode()
    return base64.urlsafe_b64encode(raw).decode()


def decode_cursor(token: str) -> tuple[datetime, uuid.UUID]:
    try:
        created_at, row_id = json.loads(base64.urlsafe_b64decode(token.encode()))
        return datetime.fromisoformat(created_at), uuid.UUID(row_id)
    except (ValueError, TypeError):
        raise InvalidArgument("page_token is not valid", reason="INVALID_PAGE_TOKEN") from None
