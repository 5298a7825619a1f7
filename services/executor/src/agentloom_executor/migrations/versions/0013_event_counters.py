"""Each execution's last event number lives in `event_counters`, not on the execution row.

The relay numbered a round's events by bumping `executions.event_seq`, an UPDATE of the
execution rows: it waited for every runner transaction holding one of them (FOR UPDATE for
the whole transaction), and runners then waited for the relay's round holding others
(pg_stat_statements under bench W4: 100-190 ms per numbering round, 14 ms per runner lock
on average). Only the relay writes the counters, one at a time, so nobody waits.

Revision ID: 0013
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

SCHEMA = "executor"


def upgrade() -> None:
    # No foreign key: its check would lock the execution row (see 0008).
    op.create_table(
        "event_counters",
        sa.Column("execution_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("seq", sa.BigInteger, nullable=False),
        schema=SCHEMA,
    )
    op.execute(
        f"INSERT INTO {SCHEMA}.event_counters (execution_id, seq) "
        f"SELECT id, event_seq FROM {SCHEMA}.executions WHERE event_seq > 0"
    )
    op.drop_column("executions", "event_seq", schema=SCHEMA)


def downgrade() -> None:
    op.add_column(
        "executions",
        sa.Column("event_seq", sa.BigInteger, nullable=False, server_default="0"),
        schema=SCHEMA,
    )
    op.execute(
        f"UPDATE {SCHEMA}.executions AS x SET event_seq = c.seq "
        f"FROM {SCHEMA}.event_counters AS c WHERE c.execution_id = x.id"
    )
    op.drop_table("event_counters", schema=SCHEMA)
