# syntax=docker/dockerfile:1.7
#
# One image for every Agentloom service; the container's command picks what runs:
#   python -m agentloom_gateway serve        (HTTP 8000)
#   python -m agentloom_graphs serve         (gRPC 50051; blocks 50052, billing 50053, notify 50055)
#   python -m agentloom_executor api|scheduler|runner
#   python -m agentloom_<svc> migrate        (one-shot: the service's own schema)
#
# Build: docker build -t agentloom:dev .

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# uv pinned to the version that wrote uv.lock.
FROM ghcr.io/astral-sh/uv:0.13.9 AS uv

# ---- builder: resolve the locked environment into /opt/agentloom/venv -------------------------
FROM ${PYTHON_IMAGE} AS builder

COPY --from=uv /uv /usr/local/bin/uv

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PYTHON_DOWNLOADS=never \
    UV_PYTHON=/usr/local/bin/python3.11 \
    UV_PROJECT_ENVIRONMENT=/opt/agentloom/venv

WORKDIR /src

# Third-party dependencies first, from the lock and the workspace manifests only, so that a
# code change reuses this layer. Every workspace member's pyproject.toml must be here.
COPY pyproject.toml uv.lock ./
COPY libs/common/pyproject.toml libs/common/pyproject.toml
COPY libs/devkit/pyproject.toml libs/devkit/pyproject.toml
COPY libs/protos/pyproject.toml libs/protos/pyproject.toml
COPY services/billing/pyproject.toml services/billing/pyproject.toml
COPY services/blocks/pyproject.toml services/blocks/pyproject.toml
COPY services/executor/pyproject.toml services/executor/pyproject.toml
COPY services/gateway/pyproject.toml services/gateway/pyproject.toml
COPY services/graphs/pyproject.toml services/graphs/pyproject.toml
COPY services/notify/pyproject.toml services/notify/pyproject.toml
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-install-workspace --no-install-package agentloom-devkit

# Then the workspace packages themselves, installed as wheels (not editable) so that the
# runtime stage needs no source tree. The devkit (test servers, local launcher) stays out.
COPY libs/ libs/
COPY services/ services/
RUN --mount=type=cache,target=/root/.cache/uv \
    uv sync --frozen --no-dev --no-editable --no-install-package agentloom-devkit

# ---- runtime: the venv, a health-check script, and an unprivileged user ----------------------
FROM ${PYTHON_IMAGE} AS runtime

RUN groupadd --system --gid 10001 agentloom \
    && useradd --system --uid 10001 --gid 10001 --no-create-home \
       --home-dir /nonexistent --shell /usr/sbin/nologin agentloom

COPY --from=builder /opt/agentloom/venv /opt/agentloom/venv
COPY deploy/docker/healthcheck.py /opt/agentloom/healthcheck.py

ENV PATH=/opt/agentloom/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1

WORKDIR /opt/agentloom

# Numeric, so that Kubernetes' runAsNonRoot can verify it without a passwd lookup.
USER 10001:10001

EXPOSE 8000 50051 50052 50053 50054 50055

CMD ["python", "-m", "agentloom_gateway", "serve"]
