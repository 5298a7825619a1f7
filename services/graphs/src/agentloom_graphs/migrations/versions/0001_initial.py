"""Graphs and their versions.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

SCHEMA = "graphs"


def upgrade() -> None:
    op.create_table(
        "graphs",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("active_version", sa.Integer(), nullable=False),
        sa.Column("latest_version", sa.Integer(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name="pk_graphs"),
        sa.CheckConstraint(
            "active_version BETWEEN 1 AND latest_version", name="ck_graphs_versions"
        ),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_graphs_user_id_created_at_id",
        "graphs",
        ["user_id", "created_at", "id"],
        schema=SCHEMA,
    )
    op.create_table(
        "graph_versions",
        sa.Column("graph_id", sa.Uuid(), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column("description", sa.Text(), nullable=False),
        sa.Column("nodes", postgresql.JSONB(), nullable=False),
        sa.Column("links", postgresql.JSONB(), nullable=False),
        sa.Column("input_schema", sa.JSON(), nullable=False),
        sa.Column("output_schema", sa.JSON(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("graph_id", "version", name="pk_graph_versions"),
        sa.CheckConstraint("version >= 1", name="ck_graph_versions_version_positive"),
        sa.ForeignKeyConstraint(
            ["graph_id"],
            [f"{SCHEMA}.graphs.id"],
            name="fk_graph_versions_graph_id_graphs",
            ondelete="CASCADE",
        ),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("graph_versions", schema=SCHEMA)
    op.drop_index("ix_graphs_user_id_created_at_id", table_name="graphs", schema=SCHEMA)
    op.drop_table("graphs", schema=SCHEMA)
