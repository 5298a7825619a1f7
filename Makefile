# The two commands of the README: `make run` (the platform) and `make test` (every test).
# Everything else a fresh machine needs is installed from here: uv from PyPI, then the
# locked workspace.

SHELL := /bin/bash
PYTHON ?= python3
UV := $(PYTHON) -m uv

.PHONY: run test install services lint typecheck pytest protos

install:
	@$(PYTHON) -m uv --version >/dev/null 2>&1 || $(PYTHON) -m pip install --quiet "uv>=0.5"
	@$(UV) sync --frozen --quiet

services:
	@bash scripts/ensure-services.sh

run: install services
	$(UV) run python -m agentloom_devkit run

test: install services lint typecheck pytest

lint:
	$(UV) run ruff check .
	$(UV) run ruff format --check .

typecheck:
	$(UV) run mypy libs/common/src libs/devkit/src services/*/src

pytest:
	$(UV) run pytest -q --durations=15

protos: install
	$(UV) run python scripts/gen_protos.py

# `make bench`: the benchmark suite (bench/README.md): the whole platform and a Celery
# baseline in the same run; one table, and bench/results/latest.json. Celery and psutil are
# the benchmark's own, layered over the locked workspace for this command only.
# Pass options with BENCH_ARGS, e.g. `make bench BENCH_ARGS="--w4-seconds 30"`.
.PHONY: bench
BENCH_WITH := --with "celery[redis]>=5.4,<6" --with "psutil>=5.9"
bench: install services
	$(UV) run --frozen pytest -q -p no:cacheprovider bench/tests
	$(UV) run --frozen $(BENCH_WITH) python -m bench $(BENCH_ARGS)
