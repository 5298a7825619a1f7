"""Events are recorded into a queue and written to `execution_events` once, numbered.

Until now every event was written three times into `execution_events`: inserted by a
trigger, updated with its number, updated again once published. None of these updates
could be HOT (`seq` is indexed, `published` has a partial index), so each event left two
dead versions and eleven heap and index entries behind; under bench W4 the table gathered
30-90k dead rows every ~6 s and its vacuums lined up with the API's slow spells (issue 8).

Now:
- the triggers insert into `event_queue` (no sequence number, one index): a small table
  that turns over like a queue;
- the relay moves a batch of queued events into `execution_events` in one statement,
  numbered (DELETE ... RETURNING, INSERT ... SELECT), so the log is append-only until the
  prune;
- what is published is tracked by one cursor, `event_relay.published_through`: the relay
  inserts numbered events under its lock, a round's ids above the previous round's, so
  "every id up to N is published" is exact.

The trigger functions differ from 0007 and 0010 only in the table they insert into: they
are rewritten from their definitions in the database, that table name replaced.

Revision ID: 0015
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB, UUID

revision = "0015"
down_revision = "0014"
branch_labels = None
depends_on = None

SCHEMA = "executor"
LOG = f"{SCHEMA}.execution_events"
QUEUE = f"{SCHEMA}.event_queue"
TRIGGER_FUNCTIONS = ("record_execution_event", "record_node_event")


def _retarget_triggers(old: str, new: str) -> None:
    bind = op.get_bind()
    for function in TRIGGER_FUNCTIONS:
        definition = bind.execute(
            sa.text("SELECT pg_get_functiondef(CAST(:name AS regprocedure))"),
            {"name": f"{SCHEMA}.{function}()"},
        ).scalar_one()
        if f"INSERT INTO {old} " not in definition:
            raise RuntimeError(f"{function} does not insert into {old}")
        bind.exec_driver_sql(definition.replace(f"INSERT INTO {old} ", f"INSERT INTO {new} "))


def upgrade() -> None:
    op.create_table(
        "event_queue",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("execution_id", UUID(as_uuid=True), nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("data", JSONB, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        schema=SCHEMA,
    )
    op.create_table(
        "event_relay",
        sa.Column("id", sa.SmallInteger, primary_key=True),
        sa.Column("published_through", sa.BigInteger, nullable=False),
        sa.CheckConstraint("id = 1", name="ck_event_relay_one_row"),
        schema=SCHEMA,
    )
    # Numbered but not published yet: published again from the first of them (consumers
    # deduplicate by event_id). Not numbered yet: queued again, in their order.
    op.execute(
        f"""
        INSERT INTO {SCHEMA}.event_relay (id, published_through)
        SELECT 1, coalesce(
            (SELECT min(id) - 1 FROM {LOG} WHERE NOT published AND seq IS NOT NULL),
            (SELECT max(id) FROM {LOG} WHERE seq IS NOT NULL),
            0)
        """
    )
    op.execute(
        f"""
        INSERT INTO {QUEUE} (execution_id, type, data, created_at)
        SELECT execution_id, type, data, created_at FROM {LOG} WHERE seq IS NULL ORDER BY id
        """
    )
    op.execute(f"DELETE FROM {LOG} WHERE seq IS NULL")
    op.drop_index("ix_execution_events_unpublished", "execution_events", schema=SCHEMA)
    op.drop_column("execution_events", "published", schema=SCHEMA)
    op.alter_column("execution_events", "seq", nullable=False, schema=SCHEMA)
    _retarget_triggers(LOG, QUEUE)


def downgrade() -> None:
    _retarget_triggers(QUEUE, LOG)
    op.alter_column("execution_events", "seq", nullable=True, schema=SCHEMA)
    op.add_column(
        "execution_events",
        sa.Column("published", sa.Boolean, nullable=False, server_default=sa.false()),
        schema=SCHEMA,
    )
    op.execute(
        f"""
        UPDATE {LOG} SET published = true
        WHERE id <= (SELECT published_through FROM {SCHEMA}.event_relay)
        """
    )
    op.execute(
        f"""
        INSERT INTO {LOG} (execution_id, type, data, created_at)
        SELECT execution_id, type, data, created_at FROM {QUEUE} ORDER BY id
        """
    )
    op.create_index(
        "ix_execution_events_unpublished",
        "execution_events",
        ["id"],
        schema=SCHEMA,
        postgresql_where=sa.text("NOT published"),
    )
    op.drop_table("event_relay", schema=SCHEMA)
    op.drop_table("event_queue", schema=SCHEMA)
