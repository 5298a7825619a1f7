"""Two indexes fewer on `execution_events`: every event is written three times (recorded,
numbered, published), none of them a HOT update, so each index took three entries per event.

- `ix_execution_events_unsequenced` (id WHERE seq IS NULL): the relay finds the rows to
  number through `ix_execution_events_unpublished` (id WHERE NOT published) instead; rows
  not numbered yet are unpublished, and those numbered but not yet published are a round's
  worth at most.
- `ix_execution_events_created` (created_at): only the prune used it; it now takes the
  oldest published rows by id and deletes those recorded before the cutoff.

Numbering a round of events touched ~20 buffers per event under bench W4 (pg_stat_statements),
most of them index entries (issue 8).

Revision ID: 0014
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

SCHEMA = "executor"


def upgrade() -> None:
    op.drop_index("ix_execution_events_unsequenced", "execution_events", schema=SCHEMA)
    op.drop_index("ix_execution_events_created", "execution_events", schema=SCHEMA)


def downgrade() -> None:
    op.create_index(
        "ix_execution_events_unsequenced",
        "execution_events",
        ["id"],
        schema=SCHEMA,
        postgresql_where=sa.text("seq IS NULL"),
    )
    op.create_index(
        "ix_execution_events_created", "execution_events", ["created_at"], schema=SCHEMA
    )
