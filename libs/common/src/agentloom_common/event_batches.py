"""Execution events on the bus: several events of one type per message.

The executor's event relay publishes a round's events grouped by type, as
`{"events": [event, ...]}` with the type as routing key, so that a busy platform pays one
confirmed message (and one consumer round trip in each notify queue) per batch instead of
per event. Consumers accept a lone event object too (the shape of one event, as published
before batching and as tests and tools may still send).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Sequence
from typing import Any

# Per message: at most this many events, and about this many bytes of them (one larger
# event still travels alone).
MAX_EVENTS = 200
MAX_BYTES = 256 * 1024


class NotEvents(ValueError):
    """The body carries no event (not JSON, not an object, or a batch of non-objects)."""


def encode(events: Sequence[bytes]) -> bytes:
    """One message body for already-serialised event documents."""
    return b'{"events":[' + b",".join(events) + b"]}"


def chunks(events: Sequence[bytes]) -> Iterator[list[bytes]]:
    """Serialised events cut into message-sized runs, in order."""
    batch: list[bytes] = []
    size = 0
    for event in events:
        if batch and (len(batch) >= MAX_EVENTS or size + len(event) > MAX_BYTES):
            yield batch
            batch, size = [], 0
        batch.append(event)
        size += len(event)
    if batch:
        yield batch


def decode(body: bytes) -> list[dict[str, Any]]:
    """The events a message carries: a batch's, or the lone event it is."""
    try:
        decoded: Any = json.loads(body)
    except (UnicodeDecodeError, ValueError):
        raise NotEvents("the event is not JSON") from None
    if not isinstance(decoded, dict):
        raise NotEvents("the event is not a JSON object")
    batch = decoded.get("events")
    if batch is None:
        return [decoded]
    if not isinstance(batch, list) or not all(isinstance(item, dict) for item in batch):
        raise NotEvents("a batch's events must be JSON objects")
    return batch
