"""A node execution written in a later status than QUEUED records the statuses it went
through in its transaction: QUEUED, then RUNNING (with its inputs), then its outputs and
its final status.

A runner that queues a node and runs it itself within one transaction (inline blocks, and
the node it claims to run next) writes the row once, in its last state, instead of an
INSERT and two UPDATEs nobody else could see; the events are the same as the UPDATEs'.
Only the INSERT branch differs from 0005.

Revision ID: 0007
"""

from __future__ import annotations

from alembic import op

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

SCHEMA = "executor"


def _status_event(status: str, attempt: str, started: str, ended: str, final: bool) -> str:
    return f"""
    INSERT INTO {SCHEMA}.execution_events (execution_id, type, data, created_at)
    VALUES (NEW.execution_id, 'node.status', jsonb_build_object(
        'node_exec_id', NEW.id,
        'node_id', NEW.node_id,
        'block_id', NEW.block_id,
        'status', {status},
        'attempt', {attempt},
        'error', {"NEW.error" if final else "NULL"},
        'cost', {"NEW.cost" if final else "0"},
        'inputs', CASE WHEN {status} = 'RUNNING' THEN NEW.inputs END,
        'started_at', {started},
        'ended_at', {ended}
    ), clock_timestamp());"""


def _function(lifecycle_on_insert: bool) -> str:
    lifecycle = ""
    if lifecycle_on_insert:
        lifecycle = f"""
    IF TG_OP = 'INSERT' AND NEW.status NOT IN ('INCOMPLETE', 'QUEUED') THEN
        {_status_event("'QUEUED'", "0", "NULL", "NULL", False)}
        IF NEW.status IN ('COMPLETED', 'FAILED') THEN
            {_status_event("'RUNNING'", "NEW.attempt", "NEW.started_at", "NULL", False)}
        END IF;
    END IF;"""
    return f"""
CREATE OR REPLACE FUNCTION {SCHEMA}.record_node_event() RETURNS trigger AS $$
DECLARE
    output jsonb;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.status IS NOT DISTINCT FROM OLD.status THEN
        RETURN NULL;
    END IF;{lifecycle}
    IF NEW.status IN ('COMPLETED', 'FAILED') AND NEW.outputs IS NOT NULL THEN
        FOR output IN SELECT value FROM jsonb_array_elements(NEW.outputs) LOOP
            INSERT INTO {SCHEMA}.execution_events (execution_id, type, data, created_at)
            VALUES (NEW.execution_id, 'node.output', jsonb_build_object(
                'node_exec_id', NEW.id,
                'node_id', NEW.node_id,
                'block_id', NEW.block_id,
                'pin', output -> 0,
                'value', output -> 1
            ), clock_timestamp());
        END LOOP;
    END IF;
    {_status_event("NEW.status", "NEW.attempt", "NEW.started_at", "NEW.ended_at", True)}
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""


def upgrade() -> None:
    op.execute(_function(lifecycle_on_insert=True))


def downgrade() -> None:
    op.execute(_function(lifecycle_on_insert=False))
