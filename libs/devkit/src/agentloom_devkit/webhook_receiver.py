"""An integrator's webhook receiver for tests: verifies every request with the
`standardwebhooks` package (the off-the-shelf verifier receivers use) and answers what the
test's `respond` policy says.

Every request is recorded with its `webhook-id`, body, whether its signature verified, and
the status answered, so tests can check that nothing was lost, nothing forged, and that
every retry of one event carried the same id.
"""

from __future__ import annotations

import json
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from standardwebhooks import Webhook, WebhookVerificationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from agentloom_devkit.servers import ThreadedServer

# (webhook-id, how many times this id was received before) -> status to answer.
Respond = Callable[[str, int], int]


@dataclass(frozen=True)
class Received:
    webhook_id: str
    body: str
    headers: dict[str, str]
    verified: bool
    status: int

    def json(self) -> Any:
        return json.loads(self.body)


def always(status: int) -> Respond:
    return lambda _webhook_id, _seen: status


def flaky(failure_rate: float, seed: int, max_failures_in_a_row: int = 3) -> Respond:
    """Fail about `failure_rate` of requests (500), at random from `seed`; never more than
    `max_failures_in_a_row` times for one id, so every event gets through within the
    retry schedule."""
    rng = random.Random(seed)
    lock = threading.Lock()

    def respond(_webhook_id: str, seen: int) -> int:
        with lock:
            fail = rng.random() < failure_rate
        return 500 if fail and seen < max_failures_in_a_row else 200

    return respond


class WebhookReceiver(ThreadedServer):
    """Listens on POST /hook (any path, in fact)."""

    def __init__(self, respond: Respond | None = None, host: str = "127.0.0.1") -> None:
        self._lock = threading.Lock()
        self._received: list[Received] = []
        self.respond: Respond = respond or always(200)
        self.secret: str | None = None
        app = Starlette(routes=[Route("/{path:path}", self._handle, methods=["POST"])])
        super().__init__(app, host=host, name="webhook-receiver")

    def received(self) -> list[Received]:
        with self._lock:
            return list(self._received)

    def delivered(self) -> dict[str, Received]:
        """The verified requests answered 2xx, by webhook-id."""
        return {r.webhook_id: r for r in self.received() if r.verified and 200 <= r.status < 300}

    async def _handle(self, request: Request) -> Response:
        body = (await request.body()).decode()
        headers = {name.lower(): value for name, value in request.headers.items()}
        webhook_id = headers.get("webhook-id", "")
        verified = False
        if self.secret is not None:
            try:
                Webhook(self.secret).verify(body, headers)
                verified = True
            except WebhookVerificationError:
                verified = False
        with self._lock:
            seen = sum(1 for r in self._received if r.webhook_id == webhook_id)
            status = self.respond(webhook_id, seen) if verified else 401
            self._received.append(Received(webhook_id, body, headers, verified, status))
        return Response(status_code=status)
