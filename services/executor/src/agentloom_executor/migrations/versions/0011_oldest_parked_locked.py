"""`executor.oldest_parked(user)`: take the user's start lock, then read their oldest parked
execution, in one round trip.

Every end of a top-level execution asks for the user's oldest parked execution under the
user's lock (so that one parked by a start committing at the same moment is seen). That was
two statements, a lock and a read; in one statement the read's snapshot would be taken
before the lock is granted. In a VOLATILE plpgsql function each statement takes its own
snapshot (READ COMMITTED), so the read runs after the lock, as before, and the runner's
end of an execution costs a round trip less (issue 8).

Revision ID: 0011
"""

from __future__ import annotations

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

SCHEMA = "executor"


def upgrade() -> None:
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


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {SCHEMA}.oldest_parked(text)")
