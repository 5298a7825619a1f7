"""Page sizes and opaque page tokens."""

from __future__ import annotations

import base64
import uuid
from datetime import UTC, datetime

import pytest

from agentloom_common.errors import InvalidArgument
from agentloom_graphs.pagination import Cursor, decode_token, encode_token, page_size


@pytest.mark.parametrize(("requested", "expected"), [(0, 50), (1, 1), (100, 100), (1000, 100)])
def test_page_size_defaults_and_is_capped(requested: int, expected: int) -> None:
    assert page_size(requested) == expected


def test_negative_page_size_is_refused() -> None:
    with pytest.raises(InvalidArgument):
        page_size(-1)


def test_token_round_trips_to_the_same_cursor() -> None:
    cursor = Cursor(datetime(2024, 5, 1, 12, 0, 0, 123456, tzinfo=UTC), uuid.uuid4())

    token = encode_token(cursor)

    assert decode_token(token) == cursor
    assert "=" not in token and str(cursor.graph_id) not in token


def test_empty_token_is_the_first_page() -> None:
    assert decode_token("") is None


def _b64(raw: str) -> str:
    return base64.urlsafe_b64encode(raw.encode()).decode()


@pytest.mark.parametrize(
    "token",
    [
        "not base64 !",
        "é",
        _b64("[1, 2]"),
        _b64('["2024-01-01T00:00:00", "' + str(uuid.UUID(int=1)) + '"]'),  # naive time
        _b64('["2024-01-01T00:00:00+00:00", 7]'),
        _b64('{"a": 1}'),
        _b64("null"),
    ],
)
def test_forged_tokens_are_invalid_arguments(token: str) -> None:
    with pytest.raises(InvalidArgument) as raised:
        decode_token(token)

    assert raised.value.reason == "INVALID_PAGE_TOKEN"
