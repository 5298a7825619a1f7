"""The Celery baseline's app: one no-op task that hands its argument back (the counterpart of
`pass_through_block`), JSON messages, results in Redis. Celery's defaults otherwise, as a
user would run it: classic durable queue, persistent messages, early acks, prefetch 4."""

from __future__ import annotations

from typing import Any

from celery import Celery  # type: ignore[import-untyped]

QUEUE = "agentloom_bench"
NOOP = "bench.noop"


def noop(value: Any) -> Any:
    return value


def create_app(broker_url: str, backend_url: str) -> Celery:
    app = Celery("agentloom_bench", broker=broker_url, backend=backend_url, set_as_current=False)
    app.conf.update(
        task_serializer="json",
        result_serializer="json",
        accept_content=["json"],
        task_default_queue=QUEUE,
        result_expires=600,
        broker_connection_retry_on_startup=True,
        worker_hijack_root_logger=False,
    )
    app.task(name=NOOP)(noop)
    return app
