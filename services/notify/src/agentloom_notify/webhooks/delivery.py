"""Delivery workers: claim due deliveries, POST each signed per Standard Webhooks, record
the attempt, schedule the retry. Each notify process runs one `DeliveryWorker` with up to
`concurrency` POSTs in flight; replicas share the work through `FOR UPDATE SKIP LOCKED`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import random
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from standardwebhooks import Webhook

from agentloom_notify.webhooks import domain, repository
from agentloom_notify.webhooks.repository import Claim, Outcome
from agentloom_notify.webhooks.sealing import SealingError, SecretBox

log = logging.getLogger(__name__)

USER_AGENT = "Agentloom-Webhooks/1"
# The answer's body is not used: read this much at most, then hang up.
MAX_RESPONSE_BYTES = 4_096
MAX_ERROR_CHARS = 500


@dataclass(frozen=True)
class DeliveryOptions:
    timeout_s: float
    retry_schedule_s: tuple[float, ...]
    retry_scale: float
    retry_jitter: float
    disable_after_s: float
    concurrency: int
    poll_interval_s: float
    lease_margin_s: float


def signed_headers(secret: str, webhook_id: str, payload: str, now: datetime) -> dict[str, str]:
    """The Standard Webhooks headers of one attempt: the id is the delivery's, the timestamp
    and signature are the attempt's."""
    return {
        "webhook-id": webhook_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": Webhook(secret).sign(webhook_id, now, payload),
        "content-type": "application/json",
        "user-agent": USER_AGENT,
    }


class DeliveryWorker:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        box: SecretBox,
        client: httpx.AsyncClient,
        options: DeliveryOptions,
        *,
        rng: random.Random | None = None,
    ) -> None:
        self._sessions = sessions
        self._box = box
        self._client = client
        self._options = options
        self._rng = rng or random.Random()
        self._wake = asyncio.Event()
        self._in_flight: set[asyncio.Task[None]] = set()
        self._stopping = False

    def wake(self) -> None:
        """New or newly due work: look now rather than at the next poll."""
        self._wake.set()

    async def run(self) -> None:
        """Claim and deliver until `stop`."""
        while not self._stopping:
            self._wake.clear()
            free = self._options.concurrency - len(self._in_flight)
            if free > 0:
                for claim in await self._claim(free):
                    task = asyncio.create_task(self._deliver(claim))
                    self._in_flight.add(task)
                    task.add_done_callback(self._done)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), self._options.poll_interval_s)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._in_flight.discard(task)
        self._wake.set()

    async def stop(self, grace_s: float) -> None:
        """Take nothing new; let POSTs in flight finish within grace_s (the rest come due
        again when their lease ends, with the same webhook-id)."""
        self._stopping = True
        self._wake.set()
        if self._in_flight:
            _done, pending = await asyncio.wait(self._in_flight, timeout=grace_s)
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)

    async def _claim(self, limit: int) -> list[Claim]:
        lease = timedelta(seconds=self._options.timeout_s + self._options.lease_margin_s)
        try:
            async with self._sessions.begin() as session:
                return await repository.claim_due(
                    session, limit=limit, now=datetime.now(UTC), lease=lease
                )
        except Exception as error:  # the database is down: try again at the next poll
            log.warning("claiming webhook deliveries failed: %s", type(error).__name__)
            return []

    async def _deliver(self, claim: Claim) -> None:
        outcome = await self.attempt(claim)
        now = datetime.now(UTC)
        retry_in = domain.retry_delay_s(
            claim.attempt,
            self._options.retry_schedule_s,
            scale=self._options.retry_scale,
            jitter=self._options.retry_jitter,
            rng=self._rng,
        )
        try:
            async with self._sessions.begin() as session:
                status = await repository.record_outcome(
                    session,
                    claim,
                    outcome,
                    now=now,
                    retry_in_s=retry_in,
                    disable_after=timedelta(seconds=self._options.disable_after_s),
                )
        except Exception:
            # Not recorded: the lease runs out and the delivery is attempted again.
            log.exception("recording webhook delivery %s failed", claim.delivery_id)
            return
        log.info(
            "webhook attempt",
            extra={
                "fields": {
                    "delivery_id": str(claim.delivery_id),
                    "endpoint_id": str(claim.endpoint_id),
                    "webhook_id": claim.webhook_id,
                    "attempt": claim.attempt,
                    "status_code": outcome.status_code,
                    "result": status,
                }
            },
        )
        if status == "pending" and retry_in is not None:
            # Retries due before the next poll are taken on time.
            asyncio.get_running_loop().call_later(retry_in, self._wake.set)

    async def attempt(self, claim: Claim) -> Outcome:
        """One signed POST of the claimed delivery; never raises."""
        started_at = datetime.now(UTC)
        start = time.monotonic()
        status_code: int | None = None
        error: str | None = None
        try:
            secret = self._box.open(claim.user_id, claim.endpoint_id, claim.sealed)
            headers = signed_headers(secret, claim.webhook_id, claim.payload, started_at)
            async with asyncio.timeout(self._options.timeout_s):
                status_code = await self._post(claim.url, claim.payload, headers)
            if not domain.is_success(status_code):
                error = f"HTTP {status_code}"
                if 300 <= status_code < 400:
                    error += " (redirects are not followed)"
        except SealingError:
            log.error("the secret of webhook endpoint %s does not open", claim.endpoint_id)
            error = "the endpoint's secret cannot be read (a server key is missing)"
        except (TimeoutError, httpx.TimeoutException):
            error = f"no answer within {self._options.timeout_s:g}s"
        except httpx.HTTPError as exc:
            error = f"{type(exc).__name__}: {exc}"[:MAX_ERROR_CHARS]
        duration_ms = int((time.monotonic() - start) * 1000)
        return Outcome(started_at, duration_ms, status_code, error)

    async def _post(self, url: str, payload: str, headers: dict[str, str]) -> int:
        async with self._client.stream(
            "POST", url, content=payload.encode(), headers=headers
        ) as response:
            received = 0
            async for chunk in response.aiter_raw():
                received += len(chunk)
                if received >= MAX_RESPONSE_BYTES:
                    break
            return response.status_code
