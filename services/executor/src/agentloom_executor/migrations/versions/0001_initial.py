"""Executions, node executions and the outbox.

Revision ID: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "executor"
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "executions",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("graph_id", sa.Text, nullable=False),
        sa.Column("graph_version", sa.Integer, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("inputs", postgresql.JSONB, nullable=False),
        sa.Column("credentials_inputs", postgresql.JSONB, nullable=False),
        sa.Column("outputs", postgresql.JSONB, nullable=False),
        sa.Column("graph", postgresql.JSONB, nullable=False),
        sa.Column("error", sa.Text),
        sa.Column("node_count", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cost", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS),
        sa.Column("ended_at", TS),
        sa.CheckConstraint(
            "status IN ('QUEUED','RUNNING','COMPLETED','FAILED','CANCELLED')",
            name="executions_status_valid",
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_executions_user_created", "executions", ["user_id", "created_at"], schema=SCHEMA
    )
    op.create_table(
        "node_executions",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column(
            "execution_id",
            postgresql.UUID(as_uuid=True),
            sa.ForeignKey(f"{SCHEMA}.executions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("node_id", sa.Text, nullable=False),
        sa.Column("block_id", sa.Text, nullable=False),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("inputs", postgresql.JSONB, nullable=False),
        sa.Column("outputs", postgresql.JSONB),
        sa.Column("error", sa.Text),
        sa.Column("attempt", sa.Integer, nullable=False, server_default="0"),
        sa.Column("cost", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("applied", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("seq", sa.BigInteger, sa.Identity(), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("started_at", TS),
        sa.Column("ended_at", TS),
        sa.CheckConstraint(
            "status IN ('INCOMPLETE','QUEUED','RUNNING','COMPLETED','FAILED','CANCELLED')",
            name="node_executions_status_valid",
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_node_executions_exec_node",
        "node_executions",
        ["execution_id", "node_id", "status"],
        schema=SCHEMA,
    )
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
        sa.Column("exchange", sa.Text, nullable=False),
        sa.Column("routing_key", sa.Text, nullable=False),
        sa.Column("message_id", sa.Text, nullable=False),
        sa.Column("body", sa.LargeBinary, nullable=False),
        sa.Column("mandatory", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("created_at", TS, nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("outbox", schema=SCHEMA)
    op.drop_table("node_executions", schema=SCHEMA)
    op.drop_table("executions", schema=SCHEMA)
