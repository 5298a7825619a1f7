"""Execution events on the bus: several events of one type per message.

The executor's event relay publishes a round's events grouped by user, as
`{"events": [event, ...]}`, so that a busy platform pays one confirmed message (and one
consumer round trip in each notify queue) per batch instead of per event. Consumers accept
a lone event object too (the shape of one event, as published before batching and as tests
and tools may still send).

A batch holds the events of one user, named in the message's `user_id` header (`OWNER`),
and says which types it holds in its `event_types` header (`TYPES`, comma-separated), so
that a consumer can route it (notify's live relay) or skip it (webhook intake, for a user
without an endpoint wanting any of those types) without parsing it: JSON decoding and
encoding were most of notify's CPU under bench W2. A message without the headers is parsed.

The routing key is the batch's type when it holds one type, else `MIXED`: a queue that
wants every event binds `#` (as notify's do).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

# Per message: at most this many events, and about this many bytes of them (one larger
# event still travels alone).
MAX_EVENTS = 200
MAX_BYTES = 256 * 1024
# The message header naming the one user whose events a batch carries.
OWNER = "user_id"
# The message header listing the types of the events a batch carries.
TYPES = "event_types"
# The routing key of a batch of several types.
MIXED = "events.mixed"


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


def owner(headers: Mapping[str, Any] | None) -> str | None:
    """The user whose events the message carries, from its header; None when the message
    does not say (then its events name their owners)."""
    value = (headers or {}).get(OWNER)
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    return value if isinstance(value, str) and value else None


def routing_key(event_types: Sequence[str]) -> str:
    """The routing key of a batch of these types (in any order, repeated or not)."""
    distinct = set(event_types)
    return next(iter(distinct)) if len(distinct) == 1 else MIXED


def types_header(event_types: Sequence[str]) -> str:
    return ",".join(sorted(set(event_types)))


def types(headers: Mapping[str, Any] | None) -> list[str] | None:
    """The types a message says its batch carries; None when it does not say."""
    value = (headers or {}).get(TYPES)
    if isinstance(value, bytes):
        value = value.decode(errors="replace")
    if not isinstance(value, str) or not value:
        return None
    return value.split(",")
