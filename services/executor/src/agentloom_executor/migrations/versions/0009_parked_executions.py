"""Executions refused a start for the user's running limit are marked `parked`.

Only a parked execution needs asking for again when a slot frees: one whose own request is
still on its way starts when it arrives. Before this, every start and every end asked for
the user's oldest QUEUED execution, which in a burst was almost always one whose request
was already on its way: three or four scheduler messages per execution instead of one.
The partial index finds a user's oldest parked execution without reading the others.
Executions waiting when this runs were all refused once (or their request is on its way):
they are marked parked, so the next end asks for them as before.

Revision ID: 0009
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None

SCHEMA = "executor"


def upgrade() -> None:
    op.add_column(
        "executions",
        sa.Column("parked", sa.Boolean, nullable=False, server_default=sa.false()),
        schema=SCHEMA,
    )
    op.execute(
        f"UPDATE {SCHEMA}.executions SET parked = true"
        " WHERE status = 'QUEUED' AND parent_node_execution_id IS NULL"
    )
    op.create_index(
        "ix_executions_parked",
        "executions",
        ["user_id", "created_at", "id"],
        schema=SCHEMA,
        postgresql_where=sa.text("parked AND status = 'QUEUED'"),
    )


def downgrade() -> None:
    op.drop_index("ix_executions_parked", "executions", schema=SCHEMA)
    op.drop_column("executions", "parked", schema=SCHEMA)
