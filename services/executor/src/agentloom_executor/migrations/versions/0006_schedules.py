"""Cron schedules of graphs and the slots they fired.

`schedule_fires` has the (schedule_id, fire_time) primary key, so a slot can never fire
twice whatever the replicas do; the partial index finds due schedules without a scan.

Revision ID: 0006
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

SCHEMA = "executor"


def upgrade() -> None:
    op.create_table(
        "schedules",
        sa.Column("id", UUID(as_uuid=True), primary_key=True),
        sa.Column("user_id", sa.Text, nullable=False),
        sa.Column("graph_id", sa.Text, nullable=False),
        sa.Column("graph_version", sa.Integer, nullable=False, server_default="0"),
        sa.Column("name", sa.Text, nullable=False, server_default=""),
        sa.Column("cron", sa.Text, nullable=False),
        sa.Column("timezone", sa.Text, nullable=False),
        sa.Column("inputs", JSONB, nullable=False, server_default="{}"),
        sa.Column("credentials_inputs", JSONB, nullable=False, server_default="{}"),
        sa.Column("preset_id", sa.Text),
        sa.Column("paused", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("next_run_at", sa.DateTime(timezone=True)),
        sa.Column("last_fired_at", sa.DateTime(timezone=True)),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_schedules_user_graph",
        "schedules",
        ["user_id", "graph_id", "created_at"],
        schema=SCHEMA,
    )
    op.create_index(
        "ix_schedules_due",
        "schedules",
        ["next_run_at"],
        schema=SCHEMA,
        postgresql_where=sa.text("NOT paused AND next_run_at IS NOT NULL"),
    )
    op.create_table(
        "schedule_fires",
        sa.Column(
            "schedule_id",
            UUID(as_uuid=True),
            sa.ForeignKey(f"{SCHEMA}.schedules.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("fire_time", sa.DateTime(timezone=True), primary_key=True),
        sa.Column("execution_id", UUID(as_uuid=True)),
        sa.Column("error", sa.Text),
        sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("schedule_fires", schema=SCHEMA)
    op.drop_index("ix_schedules_due", "schedules", schema=SCHEMA)
    op.drop_index("ix_schedules_user_graph", "schedules", schema=SCHEMA)
    op.drop_table("schedules", schema=SCHEMA)
