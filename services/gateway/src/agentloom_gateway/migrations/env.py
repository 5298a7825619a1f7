"""Alembic environment of the gateway's `identity` schema."""

from agentloom_common.migrations import run_env
from agentloom_gateway.tables import metadata

run_env(metadata)
