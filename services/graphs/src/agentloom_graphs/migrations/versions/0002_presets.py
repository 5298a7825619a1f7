"""Presets: saved inputs and credential choices for a graph version.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SCHEMA = "graphs"


def upgrade() -> None:
    op.create_table(
        "presets",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("graph_id", sa.Uuid(), nullable=False),
        sa.Column("graph_version", sa.Integer(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("inputs", postgresql.JSONB(), nullable=False),
        sa.Column("credentials_inputs", postgresql.JSONB(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name="pk_presets"),
        sa.ForeignKeyConstraint(
            ["graph_id", "graph_version"],
            [f"{SCHEMA}.graph_versions.graph_id", f"{SCHEMA}.graph_versions.version"],
            name="fk_presets_graph_id_graph_versions",
            ondelete="CASCADE",
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_presets_user_id_created_at_id",
        "presets",
        ["user_id", "created_at", "id"],
        schema=SCHEMA,
    )
    op.create_index(
        "ix_presets_graph_id_graph_version", "presets", ["graph_id", "graph_version"], schema=SCHEMA
    )


def downgrade() -> None:
    op.drop_index("ix_presets_graph_id_graph_version", table_name="presets", schema=SCHEMA)
    op.drop_index("ix_presets_user_id_created_at_id", table_name="presets", schema=SCHEMA)
    op.drop_table("presets", schema=SCHEMA)
