"""The events-on-the-bus codec: batches cut to size, lone events still understood."""

from __future__ import annotations

import json

import pytest

from agentloom_common import event_batches


def _event(i: int, size: int = 10) -> bytes:
    return json.dumps({"event_id": f"x:{i}", "pad": "p" * size}).encode()


def test_a_batch_round_trips_in_order() -> None:
    events = [_event(i) for i in range(5)]
    decoded = event_batches.decode(event_batches.encode(events))
    assert [event["event_id"] for event in decoded] == [f"x:{i}" for i in range(5)]


def test_a_lone_event_is_a_batch_of_one() -> None:
    assert event_batches.decode(b'{"event_id": "x:1"}') == [{"event_id": "x:1"}]


def test_chunks_respect_the_count_and_byte_limits() -> None:
    many = [_event(i) for i in range(event_batches.MAX_EVENTS * 2 + 1)]
    sizes = [len(chunk) for chunk in event_batches.chunks(many)]
    assert sizes == [event_batches.MAX_EVENTS, event_batches.MAX_EVENTS, 1]
    big = [_event(i, size=event_batches.MAX_BYTES // 2) for i in range(3)]
    assert [len(chunk) for chunk in event_batches.chunks(big)] == [1, 1, 1]
    huge = [_event(0, size=event_batches.MAX_BYTES * 2)]
    assert [len(chunk) for chunk in event_batches.chunks(huge)] == [1]
    flat = [event for chunk in event_batches.chunks(many) for event in chunk]
    assert flat == many


@pytest.mark.parametrize(
    "body", [b"not json", b"[1, 2]", b'"text"', b'{"events": [1]}', b'{"events": "x"}']
)
def test_anything_else_is_refused(body: bytes) -> None:
    with pytest.raises(event_batches.NotEvents):
        event_batches.decode(body)
