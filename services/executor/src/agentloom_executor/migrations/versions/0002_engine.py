"""Engine state: leases and retries on node executions, static link values, limits,
parent links for sub-agent executions, and the per-user key-value memory.

Revision ID: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "executor"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.add_column("node_executions", sa.Column("lease_expires_at", TS), schema=SCHEMA)
    op.add_column("node_executions", sa.Column("retry_at", TS), schema=SCHEMA)
    op.add_column("node_executions", sa.Column("dispatched_at", TS), schema=SCHEMA)
    op.add_column(
        "node_executions",
        sa.Column("config", postgresql.JSONB, nullable=False, server_default="{}"),
        schema=SCHEMA,
    )
    op.add_column(
        "executions",
        sa.Column("static_values", postgresql.JSONB, nullable=False, server_default="{}"),
        schema=SCHEMA,
    )
    op.add_column(
        "executions",
        sa.Column("node_execution_total", sa.Integer, nullable=False, server_default="0"),
        schema=SCHEMA,
    )
    op.add_column("executions", sa.Column("deadline_at", TS), schema=SCHEMA)
    op.add_column("executions", sa.Column("requested_at", TS), schema=SCHEMA)
    op.add_column(
        "executions",
        sa.Column("parent_node_execution_id", postgresql.UUID(as_uuid=True)),
        schema=SCHEMA,
    )
    op.add_column(
        "executions", sa.Column("parent_execution_id", postgresql.UUID(as_uuid=True)), schema=SCHEMA
    )
    op.add_column(
        "executions",
        sa.Column("depth", sa.Integer, nullable=False, server_default="0"),
        schema=SCHEMA,
    )
    op.create_index("ix_executions_user_status", "executions", ["user_id", "status"], schema=SCHEMA)
    op.create_index("ix_executions_parent", "executions", ["parent_execution_id"], schema=SCHEMA)
    op.create_index(
        "ix_node_executions_open",
        "node_executions",
        ["status", "lease_expires_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("status IN ('QUEUED', 'RUNNING')"),
    )
    op.create_index(
        "ix_node_executions_unapplied",
        "node_executions",
        ["ended_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("NOT applied AND status IN ('COMPLETED', 'FAILED')"),
    )
    op.create_table(
        "user_values",
        sa.Column("user_id", sa.Text, primary_key=True),
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", postgresql.JSONB, nullable=False),
        sa.Column("updated_at", TS, nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("user_values", schema=SCHEMA)
    op.drop_index("ix_node_executions_unapplied", "node_executions", schema=SCHEMA)
    op.drop_index("ix_node_executions_open", "node_executions", schema=SCHEMA)
    op.drop_index("ix_executions_parent", "executions", schema=SCHEMA)
    op.drop_index("ix_executions_user_status", "executions", schema=SCHEMA)
    for column in (
        "depth",
        "parent_execution_id",
        "parent_node_execution_id",
        "deadline_at",
        "node_execution_total",
        "static_values",
    ):
        op.drop_column("executions", column, schema=SCHEMA)
    for column in ("config", "dispatched_at", "retry_at", "lease_expires_at"):
        op.drop_column("node_executions", column, schema=SCHEMA)
