"""Event numbers are counted in `event_counters`, which only the event relay writes.

The relay kept each execution's last number in `executions.event_seq`, so numbering a
round's events updated their executions' rows, and waited for every one of them that a
runner held. A runner's long transaction (a node queuing 10,000 iterations: 6.8 s in bench
W5) then held up every user's events, not only its own execution's (issue 8). The relay
holds its advisory lock while it numbers, so nobody else ever writes these counters and
numbering never waits. Narrow rows, too: the old update rewrote the whole execution row.

`executions.event_seq` goes; `write_new` (migration 0013), which names the executions'
columns, is rewritten from its definition in the database without it.

Revision ID: 0016
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0016"
down_revision = "0015"
branch_labels = None
depends_on = None

SCHEMA = "executor"
WITH_SEQ = "idempotency_key, event_seq, node_count"
WITHOUT_SEQ = "idempotency_key, node_count"


def _rewrite_write_new(old: str, new: str) -> None:
    bind = op.get_bind()
    definition = bind.execute(
        sa.text("SELECT pg_get_functiondef(CAST(:name AS regprocedure))"),
        {"name": f"{SCHEMA}.write_new(jsonb, jsonb, jsonb)"},
    ).scalar_one()
    if definition.count(old) != 2:  # the INSERT's column list and the SELECT's
        raise RuntimeError(f"write_new does not name the columns {old!r} twice")
    bind.exec_driver_sql(definition.replace(old, new))


def upgrade() -> None:
    op.create_table(
        "event_counters",
        sa.Column("execution_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("last_seq", sa.BigInteger, nullable=False),
        schema=SCHEMA,
    )
    op.execute(
        f"""
        INSERT INTO {SCHEMA}.event_counters (execution_id, last_seq)
        SELECT id, event_seq FROM {SCHEMA}.executions WHERE event_seq > 0
        """
    )
    _rewrite_write_new(WITH_SEQ, WITHOUT_SEQ)
    op.drop_column("executions", "event_seq", schema=SCHEMA)


def downgrade() -> None:
    op.add_column(
        "executions",
        sa.Column("event_seq", sa.BigInteger, nullable=False, server_default="0"),
        schema=SCHEMA,
    )
    op.execute(
        f"""
        UPDATE {SCHEMA}.executions AS x SET event_seq = c.last_seq
        FROM {SCHEMA}.event_counters AS c WHERE c.execution_id = x.id
        """
    )
    op.drop_table("event_counters", schema=SCHEMA)
    _rewrite_write_new(WITHOUT_SEQ, WITH_SEQ)
