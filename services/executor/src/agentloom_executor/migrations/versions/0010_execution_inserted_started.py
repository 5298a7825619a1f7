"""An execution written in a later status than QUEUED records the statuses it went through
in its transaction: QUEUED, then RUNNING, then its final status.

The executions API starts an execution in the transaction that creates it (issue 8), so it
now writes the row once, in the state the start leaves it (RUNNING, or ended at once),
instead of an INSERT and an UPDATE nobody else could see; watchers get the same events as
before. Only the INSERT branch differs from 0005 (as 0007 did for node executions).

Revision ID: 0010
"""

from __future__ import annotations

from alembic import op

revision = "0010"
down_revision = "0009"
branch_labels = None
depends_on = None

SCHEMA = "executor"


def _status_event(status: str, final: bool) -> str:
    return f"""
    INSERT INTO {SCHEMA}.execution_events (execution_id, type, data, created_at)
    VALUES (NEW.id, 'execution.status', jsonb_build_object(
        'status', {status},
        'error', {"NEW.error" if final else "NULL"},
        'node_count', {"NEW.node_count" if final else "0"},
        'cost', {"NEW.cost" if final else "0"},
        'started_at', {"NEW.started_at" if status != "'QUEUED'" else "NULL"},
        'ended_at', {"NEW.ended_at" if final else "NULL"}
    ), clock_timestamp());"""


def _function(lifecycle_on_insert: bool) -> str:
    lifecycle = ""
    if lifecycle_on_insert:
        lifecycle = f"""
    IF TG_OP = 'INSERT' AND NEW.status <> 'QUEUED' THEN
        {_status_event("'QUEUED'", False)}
        IF NEW.status <> 'RUNNING' AND NEW.started_at IS NOT NULL THEN
            {_status_event("'RUNNING'", False)}
        END IF;
    END IF;"""
    return f"""
CREATE OR REPLACE FUNCTION {SCHEMA}.record_execution_event() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.status IS NOT DISTINCT FROM OLD.status THEN
        RETURN NULL;
    END IF;{lifecycle}
    {_status_event("NEW.status", True)}
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""


def upgrade() -> None:
    op.execute(_function(lifecycle_on_insert=True))


def downgrade() -> None:
    op.execute(_function(lifecycle_on_insert=False))
