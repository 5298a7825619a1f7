"""JWT subjects, suspension of users and keys, scopes for existing keys, credentials vault.

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

SCHEMA = "identity"
# Keys made before scopes existed could do everything a user can: keep it that way.
USER_SCOPES = (
    "graphs:read",
    "graphs:write",
    "executions:read",
    "executions:write",
    "blocks:read",
    "blocks:execute",
    "webhooks:manage",
    "credentials:manage",
    "credits:read",
    "profile:read",
    "profile:write",
    "api_keys:manage",
)


def upgrade() -> None:
    op.add_column("users", sa.Column("subject", sa.Text()), schema=SCHEMA)
    op.execute(f"UPDATE {SCHEMA}.users SET subject = id::text")
    op.alter_column("users", "subject", nullable=False, schema=SCHEMA)
    op.create_unique_constraint("users_subject_key", "users", ["subject"], schema=SCHEMA)
    op.alter_column("users", "email", nullable=True, schema=SCHEMA)
    op.add_column("users", sa.Column("suspended_at", sa.DateTime(timezone=True)), schema=SCHEMA)
    op.add_column("api_keys", sa.Column("suspended_at", sa.DateTime(timezone=True)), schema=SCHEMA)
    scopes = ", ".join(f"'{scope}'" for scope in USER_SCOPES)
    op.execute(
        f"UPDATE {SCHEMA}.api_keys SET scopes = ARRAY[{scopes}]::text[] WHERE scopes = '{{}}'"
    )
    op.create_table(
        "credentials",
        sa.Column("id", postgresql.UUID(), primary_key=True),
        sa.Column(
            "user_id",
            postgresql.UUID(),
            sa.ForeignKey(f"{SCHEMA}.users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("provider", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("attributes", postgresql.JSONB(), nullable=False, server_default=sa.text("'{}'")),
        sa.Column("kek_id", sa.Text(), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("scheme", sa.SmallInteger(), nullable=False, server_default=sa.text("1")),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        schema=SCHEMA,
    )
    op.create_index("ix_credentials_user_id", "credentials", ["user_id"], schema=SCHEMA)
    op.create_index("ix_credentials_kek_id", "credentials", ["kek_id"], schema=SCHEMA)


def downgrade() -> None:
    op.drop_table("credentials", schema=SCHEMA)
    op.drop_column("api_keys", "suspended_at", schema=SCHEMA)
    op.drop_column("users", "suspended_at", schema=SCHEMA)
    op.execute(f"DELETE FROM {SCHEMA}.users WHERE email IS NULL")
    op.alter_column("users", "email", nullable=False, schema=SCHEMA)
    op.drop_constraint("users_subject_key", "users", schema=SCHEMA)
    op.drop_column("users", "subject", schema=SCHEMA)
