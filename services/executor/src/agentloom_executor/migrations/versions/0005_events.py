"""Execution events and idempotent execution creation.

Events: every status change of an execution or a node execution, and every output, becomes
a row of `execution_events`, written by triggers in the same transaction as the change, so
no code path can forget one and none is published for a change that rolled back. The
event relay (events.py) later gives each row its per-execution sequence number and
publishes it on the bus.

Idempotency: `executions.idempotency_key`, unique per user, so a schedule slot or a trigger
delivery retried after a crash finds the execution it already started.

Revision ID: 0005
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

SCHEMA = "executor"

EXECUTION_EVENT = f"""
CREATE OR REPLACE FUNCTION {SCHEMA}.record_execution_event() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.status IS NOT DISTINCT FROM OLD.status THEN
        RETURN NULL;
    END IF;
    INSERT INTO {SCHEMA}.execution_events (execution_id, type, data, created_at)
    VALUES (NEW.id, 'execution.status', jsonb_build_object(
        'status', NEW.status,
        'error', NEW.error,
        'node_count', NEW.node_count,
        'cost', NEW.cost,
        'started_at', NEW.started_at,
        'ended_at', NEW.ended_at
    ), clock_timestamp());
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""

# Outputs are events of their own, one per yielded value, before the terminal status.
NODE_EVENT = f"""
CREATE OR REPLACE FUNCTION {SCHEMA}.record_node_event() RETURNS trigger AS $$
DECLARE
    output jsonb;
BEGIN
    IF TG_OP = 'UPDATE' AND NEW.status IS NOT DISTINCT FROM OLD.status THEN
        RETURN NULL;
    END IF;
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
    INSERT INTO {SCHEMA}.execution_events (execution_id, type, data, created_at)
    VALUES (NEW.execution_id, 'node.status', jsonb_build_object(
        'node_exec_id', NEW.id,
        'node_id', NEW.node_id,
        'block_id', NEW.block_id,
        'status', NEW.status,
        'attempt', NEW.attempt,
        'error', NEW.error,
        'cost', NEW.cost,
        'inputs', CASE WHEN NEW.status = 'RUNNING' THEN NEW.inputs END,
        'started_at', NEW.started_at,
        'ended_at', NEW.ended_at
    ), clock_timestamp());
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;
"""


def upgrade() -> None:
    op.add_column("executions", sa.Column("idempotency_key", sa.Text), schema=SCHEMA)
    op.create_index(
        "ux_executions_user_idempotency_key",
        "executions",
        ["user_id", "idempotency_key"],
        unique=True,
        schema=SCHEMA,
        postgresql_where=sa.text("idempotency_key IS NOT NULL"),
    )
    op.add_column(
        "executions",
        sa.Column("event_seq", sa.BigInteger, nullable=False, server_default="0"),
        schema=SCHEMA,
    )
    op.create_table(
        "execution_events",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column(
            "execution_id",
            UUID(as_uuid=True),
            sa.ForeignKey(f"{SCHEMA}.executions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        # Given by the relay, in commit order: 1, 2, 3... per execution, no gaps.
        sa.Column("seq", sa.BigInteger),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("data", JSONB, nullable=False),
        sa.Column("published", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_index(
        "ux_execution_events_seq",
        "execution_events",
        ["execution_id", "seq"],
        unique=True,
        schema=SCHEMA,
    )
    op.create_index(
        "ix_execution_events_unsequenced",
        "execution_events",
        ["id"],
        schema=SCHEMA,
        postgresql_where=sa.text("seq IS NULL"),
    )
    op.create_index(
        "ix_execution_events_unpublished",
        "execution_events",
        ["id"],
        schema=SCHEMA,
        postgresql_where=sa.text("NOT published"),
    )
    op.create_index(
        "ix_execution_events_created", "execution_events", ["created_at"], schema=SCHEMA
    )
    op.execute(EXECUTION_EVENT)
    op.execute(NODE_EVENT)
    op.execute(
        f"CREATE TRIGGER executions_event AFTER INSERT OR UPDATE OF status ON "
        f"{SCHEMA}.executions FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.record_execution_event()"
    )
    op.execute(
        f"CREATE TRIGGER node_executions_event AFTER INSERT OR UPDATE OF status ON "
        f"{SCHEMA}.node_executions FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.record_node_event()"
    )


def downgrade() -> None:
    op.execute(f"DROP TRIGGER IF EXISTS node_executions_event ON {SCHEMA}.node_executions")
    op.execute(f"DROP TRIGGER IF EXISTS executions_event ON {SCHEMA}.executions")
    op.execute(f"DROP FUNCTION IF EXISTS {SCHEMA}.record_node_event()")
    op.execute(f"DROP FUNCTION IF EXISTS {SCHEMA}.record_execution_event()")
    op.drop_table("execution_events", schema=SCHEMA)
    op.drop_column("executions", "event_seq", schema=SCHEMA)
    op.drop_index("ux_executions_user_idempotency_key", "executions", schema=SCHEMA)
    op.drop_column("executions", "idempotency_key", schema=SCHEMA)
