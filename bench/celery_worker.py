"""`celery -A bench.celery_worker worker`: Celery needs a module-level app to start a worker,
so this one reads where the broker and backend are from the environment the baseline sets."""

from __future__ import annotations

import os

from bench.celery_app import create_app

app = create_app(os.environ["BENCH_CELERY_BROKER"], os.environ["BENCH_CELERY_BACKEND"])
