"""Drop `executor.oldest_parked(user)` (0011): the end of an execution no longer takes the
user's start lock.

A start about to park locks the running executions it counted instead
(`scheduling._still_running`), so an end and a start at the same moment are ordered by the
ended execution's row lock; the end reads the oldest parked execution with a plain query.

Revision ID: 0012
"""

from __future__ import annotations

from alembic import op

revision = "0012"
down_revision = "0011"
branch_labels = None
depends_on = None

SCHEMA = "executor"


def upgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {SCHEMA}.oldest_parked(text)")


def downgrade() -> None:
    op.execute(
        f"""
CREATE OR REPLACE FUNCTION {SCHEMA}.oldest_parked(p_user text) RETURNS uuid
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(hashtext(p_user));
    RETURN (
        SELECT id FROM {SCHEMA}.executions
        WHERE user_id = p_user AND parked AND status = 'QUEUED'
          AND parent_node_execution_id IS NULL
        ORDER BY created_at, id
        LIMIT 1
    );
END;
$$;
"""
    )
