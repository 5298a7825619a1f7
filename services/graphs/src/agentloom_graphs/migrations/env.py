"""Alembic environment of the graphs schema (run by `python -m agentloom_graphs migrate`)."""

from agentloom_common.migrations import run_env
from agentloom_graphs.tables import metadata

run_env(metadata)
