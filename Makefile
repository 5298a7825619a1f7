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
	$(UV) run pytest -q

protos: install
	$(UV) run python scripts/gen_protos.py
