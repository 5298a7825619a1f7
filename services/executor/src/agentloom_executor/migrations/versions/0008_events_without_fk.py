"""Execution events reference their execution without a foreign key.

The check of that key took a KEY SHARE lock on the execution row from every status change:
a runner claiming a node (its row locked) then waited on a transaction holding the
execution row FOR UPDATE, which could itself wait for that node row: a deadlock (seen once
in the benchmark; the job was retried). Executions are never deleted, and the relay prunes
events after the retention period, so nothing depended on the key's cascade.

Revision ID: 0008
"""

from __future__ import annotations

from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None

SCHEMA = "executor"
CONSTRAINT = "execution_events_execution_id_fkey"


def upgrade() -> None:
    op.drop_constraint(CONSTRAINT, "execution_events", schema=SCHEMA, type_="foreignkey")


def downgrade() -> None:
    op.create_foreign_key(
        CONSTRAINT,
        "execution_events",
        "executions",
        ["execution_id"],
        ["id"],
        source_schema=SCHEMA,
        referent_schema=SCHEMA,
        ondelete="CASCADE",
    )
