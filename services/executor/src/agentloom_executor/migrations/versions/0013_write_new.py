"""`executor.write_new(executions, node_executions, messages)`: a group start's new rows in
one round trip.

The executions API wrote a group start's executions, their node executions and their jobs
with three INSERTs, a round trip each, between the user's lock and the commit. One
statement with three data-modifying CTEs would run them in an unspecified order (and
record their events, by trigger, in that order); the statements of a plpgsql function run
one after the other, so the executions' events still come before their node executions'.
Each argument is a JSON array of rows keyed by column name (`jsonb_populate_recordset`);
the columns are named, so a column added later takes its default until it is added here
(issue 8).

Revision ID: 0013
"""

from __future__ import annotations

from alembic import op

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

SCHEMA = "executor"

EXECUTION_COLUMNS = (
    "id, user_id, graph_id, graph_version, status, inputs, credentials_inputs, outputs, graph,"
    " error, static_values, node_execution_total, deadline_at, requested_at, parked,"
    " parent_node_execution_id, parent_execution_id, depth, max_credits, idempotency_key,"
    " event_seq, node_count, cost, created_at, started_at, ended_at"
)
NODE_COLUMNS = (
    "id, execution_id, node_id, block_id, status, inputs, outputs, error, attempt, cost,"
    " config, lease_expires_at, retry_at, dispatched_at, applied, created_at, started_at,"
    " ended_at"
)
MESSAGE_COLUMNS = "exchange, routing_key, message_id, body, mandatory, created_at"


def upgrade() -> None:
    op.execute(
        f"""
CREATE OR REPLACE FUNCTION {SCHEMA}.write_new(
    p_executions jsonb, p_nodes jsonb, p_messages jsonb
) RETURNS TABLE(message_pk bigint, message_key text)
LANGUAGE plpgsql VOLATILE AS $$
BEGIN
    INSERT INTO {SCHEMA}.executions ({EXECUTION_COLUMNS})
    SELECT {EXECUTION_COLUMNS}
    FROM jsonb_populate_recordset(NULL::{SCHEMA}.executions, p_executions);
    INSERT INTO {SCHEMA}.node_executions ({NODE_COLUMNS})
    SELECT {NODE_COLUMNS}
    FROM jsonb_populate_recordset(NULL::{SCHEMA}.node_executions, p_nodes);
    RETURN QUERY
    INSERT INTO {SCHEMA}.outbox AS o ({MESSAGE_COLUMNS})
    SELECT {MESSAGE_COLUMNS}
    FROM jsonb_populate_recordset(NULL::{SCHEMA}.outbox, p_messages)
    RETURNING o.id, o.message_id;
END;
$$;
"""
    )


def downgrade() -> None:
    op.execute(f"DROP FUNCTION IF EXISTS {SCHEMA}.write_new(jsonb, jsonb, jsonb)")
