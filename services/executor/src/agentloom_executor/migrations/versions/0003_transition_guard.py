"""Status transitions enforced by the database itself (G7): a trigger rejects any UPDATE
that moves an execution or a node execution along a transition the engine does not allow,
so a bug or a late writer cannot resurrect a terminal state.

Revision ID: 0003
"""

from __future__ import annotations

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

SCHEMA = "executor"

# Kept in step with agentloom_executor.status.TRANSITIONS (a test compares them).
NODE_TRANSITIONS = {
    "INCOMPLETE": ["QUEUED", "CANCELLED"],
    "QUEUED": ["RUNNING", "CANCELLED"],
    "RUNNING": ["COMPLETED", "FAILED", "CANCELLED", "QUEUED"],
}
EXECUTION_TRANSITIONS = {
    "QUEUED": ["RUNNING", "CANCELLED"],
    "RUNNING": ["COMPLETED", "FAILED", "CANCELLED"],
}


def _function(name: str, transitions: dict[str, list[str]]) -> str:
    pairs = ", ".join(
        f"'{source}>{target}'" for source, targets in transitions.items() for target in targets
    )
    return f"""
CREATE OR REPLACE FUNCTION {SCHEMA}.{name}() RETURNS trigger AS $$
BEGIN
    IF NEW.status IS DISTINCT FROM OLD.status
       AND NOT (OLD.status || '>' || NEW.status = ANY (ARRAY[{pairs}])) THEN
        RAISE EXCEPTION 'illegal status transition % -> % on %.%', OLD.status, NEW.status,
            TG_TABLE_NAME, OLD.id USING ERRCODE = 'check_violation';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
"""


def upgrade() -> None:
    op.execute(_function("check_node_transition", NODE_TRANSITIONS))
    op.execute(_function("check_execution_transition", EXECUTION_TRANSITIONS))
    op.execute(
        f"CREATE TRIGGER node_executions_transition BEFORE UPDATE OF status ON "
        f"{SCHEMA}.node_executions FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.check_node_transition()"
    )
    op.execute(
        f"CREATE TRIGGER executions_transition BEFORE UPDATE OF status ON {SCHEMA}.executions "
        f"FOR EACH ROW EXECUTE FUNCTION {SCHEMA}.check_execution_transition()"
    )


def downgrade() -> None:
    op.execute(f"DROP TRIGGER IF EXISTS executions_transition ON {SCHEMA}.executions")
    op.execute(f"DROP TRIGGER IF EXISTS node_executions_transition ON {SCHEMA}.node_executions")
    op.execute(f"DROP FUNCTION IF EXISTS {SCHEMA}.check_execution_transition()")
    op.execute(f"DROP FUNCTION IF EXISTS {SCHEMA}.check_node_transition()")
