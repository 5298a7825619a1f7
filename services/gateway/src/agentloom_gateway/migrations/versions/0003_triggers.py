"""Incoming triggers (secret sealed like a credential's) and their deliveries, unique by the
sender's `webhook-id` per trigger.

Revision ID: 0003
Revises: 0002
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "identity"


def upgrade() -> None:
    op.create_table(
        "triggers",
        sa.Column("id", postgresql.UUID(), primary_key=True),
        sa.Column(
            "user_id",
            postgresql.UUID(),
            sa.ForeignKey(f"{SCHEMA}.users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("graph_id", postgresql.UUID(), nullable=False),
        sa.Column("graph_version", sa.Integer(), nullable=False, server_default=sa.text("0")),
        sa.Column("preset_id", postgresql.UUID(), nullable=True),
        sa.Column("input_name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False, server_default=""),
        sa.Column("enabled", sa.Boolean(), nullable=False, server_default=sa.text("true")),
        sa.Column("kek_id", sa.Text(), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_triggers_user_id", "triggers", ["user_id"], schema=SCHEMA)
    op.create_index("ix_triggers_graph_id", "triggers", ["graph_id"], schema=SCHEMA)
    op.create_index("ix_triggers_kek_id", "triggers", ["kek_id"], schema=SCHEMA)
    op.create_table(
        "trigger_deliveries",
        sa.Column("id", postgresql.UUID(), primary_key=True),
        sa.Column(
            "trigger_id",
            postgresql.UUID(),
            sa.ForeignKey(f"{SCHEMA}.triggers.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("delivery_id", sa.Text(), nullable=False),
        sa.Column("payload", postgresql.JSONB(), nullable=False),
        sa.Column("execution_id", sa.Text(), nullable=True),
        sa.Column(
            "received_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.UniqueConstraint("trigger_id", "delivery_id", name="trigger_deliveries_delivery_key"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("trigger_deliveries", schema=SCHEMA)
    op.drop_table("triggers", schema=SCHEMA)
