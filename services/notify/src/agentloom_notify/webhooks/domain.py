"""Pure rules of outgoing webhooks: event-type filters, secrets and ids, URL syntax, and the
retry schedule. No I/O."""

from __future__ import annotations

import base64
import random
import secrets
import uuid
from collections.abc import Iterable, Sequence

import httpx

from agentloom_common.errors import InvalidArgument

# The event types the executor publishes; an endpoint subscribes to some, or to "*".
EVENT_TYPES = ("execution.status", "node.status", "node.output")
ALL_EVENTS = "*"
SECRET_PREFIX = "whsec_"
SECRET_BYTES = 32
WEBHOOK_ID_PREFIX = "msg_"
MAX_DESCRIPTION = 1_000


def field_error(field: str, message: str, reason: str = "INVALID_ARGUMENT") -> InvalidArgument:
    """An INVALID_ARGUMENT naming the request field at fault (the gateway answers 422)."""
    return InvalidArgument(message, reason=reason, metadata={"field": field})


def event_types(requested: Iterable[str]) -> list[str]:
    """The endpoint's filter: known types without duplicates, or ["*"] (also when empty)."""
    chosen = list(dict.fromkeys(requested))
    if not chosen or ALL_EVENTS in chosen:
        if len(chosen) > 1:
            raise field_error("event_types", '"*" already means every event type: list it alone')
        return [ALL_EVENTS]
    unknown = [name for name in chosen if name not in EVENT_TYPES]
    if unknown:
        raise field_error(
            "event_types",
            f"unknown event types {unknown}: choose from {list(EVENT_TYPES)} or '*'",
        )
    return chosen


def matches(subscribed: Sequence[str], event_type: str) -> bool:
    return ALL_EVENTS in subscribed or event_type in subscribed


def new_secret() -> str:
    """A Standard Webhooks secret: `whsec_` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SECRET_BYTES)).decode()


def new_webhook_id() -> str:
    """The `webhook-id` of one delivery, reused by every attempt."""
    return WEBHOOK_ID_PREFIX + uuid.uuid4().hex


def check_url(url: str, *, max_length: int) -> str:
    """An absolute http(s) URL with a host, no credentials and no fragment."""
    if len(url) > max_length:
        raise field_error("url", f"the URL is longer than {max_length} characters")
    try:
        parsed = httpx.URL(url)
    except (httpx.InvalidURL, ValueError) as error:
        raise field_error("url", f"not a valid URL: {error}") from None
    if parsed.scheme not in ("http", "https") or not parsed.host:
        raise field_error("url", "only absolute http:// and https:// URLs are allowed")
    if parsed.userinfo:
        raise field_error("url", "credentials in the URL are not allowed")
    if parsed.fragment:
        raise field_error("url", "a fragment (#...) is not sent: leave it out")
    if any(ord(char) < 0x21 for char in url):
        raise field_error("url", "the URL contains spaces or control characters")
    return url


def check_description(description: str) -> str:
    if len(description) > MAX_DESCRIPTION:
        raise field_error("description", f"longer than {MAX_DESCRIPTION} characters")
    if any(ord(char) < 0x20 and char not in "\t\n" for char in description):
        raise field_error("description", "control characters are not allowed")
    return description


def retry_delay_s(
    attempts_made: int,
    schedule_s: Sequence[float],
    *,
    scale: float = 1.0,
    jitter: float = 0.0,
    rng: random.Random | None = None,
) -> float | None:
    """Seconds to wait before the next attempt after `attempts_made` failed ones, or None
    when the schedule is used up (the delivery has failed)."""
    if attempts_made < 1 or attempts_made > len(schedule_s):
        return None
    base = schedule_s[attempts_made - 1] * scale
    if jitter <= 0:
        return base
    spread = (rng or random.Random()).uniform(-jitter, jitter)
    return max(0.0, base * (1 + spread))


def is_success(status_code: int) -> bool:
    return 200 <= status_code < 300
