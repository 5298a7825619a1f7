"""Ledger order and details, daily caps, execution budgets.

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

SCHEMA = "billing"


def upgrade() -> None:
    # Existing rows get numbers in their physical order; new rows in insertion order.
    op.add_column(
        "transactions",
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        schema=SCHEMA,
    )
    op.add_column("transactions", sa.Column("description", sa.Text()), schema=SCHEMA)
    op.add_column("transactions", sa.Column("usage", postgresql.JSONB()), schema=SCHEMA)
    op.create_index(
        "ix_transactions_user_id_seq", "transactions", ["user_id", "seq"], schema=SCHEMA
    )
    op.add_column("accounts", sa.Column("daily_cap", sa.BigInteger()), schema=SCHEMA)
    op.add_column("accounts", sa.Column("usage_day", sa.Date()), schema=SCHEMA)
    op.add_column(
        "accounts",
        sa.Column("usage_day_spent", sa.BigInteger(), server_default="0", nullable=False),
        schema=SCHEMA,
    )
    op.create_check_constraint(
        "ck_accounts_daily_cap_not_negative", "accounts", "daily_cap >= 0", schema=SCHEMA
    )
    op.create_table(
        "execution_budgets",
        sa.Column("execution_id", sa.Text(), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("max_credits", sa.BigInteger(), nullable=False),
        sa.Column("spent", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("execution_id", name="pk_execution_budgets"),
        sa.ForeignKeyConstraint(
            ["user_id"], [f"{SCHEMA}.accounts.user_id"], name="fk_execution_budgets_user_id"
        ),
        sa.CheckConstraint("spent >= 0", name="ck_execution_budgets_spent_not_negative"),
        schema=SCHEMA,
    )


def downgrade() -> None:
    op.drop_table("execution_budgets", schema=SCHEMA)
    op.drop_constraint("ck_accounts_daily_cap_not_negative", "accounts", schema=SCHEMA)
    for column in ("usage_day_spent", "usage_day", "daily_cap"):
        op.drop_column("accounts", column, schema=SCHEMA)
    op.drop_index("ix_transactions_user_id_seq", "transactions", schema=SCHEMA)
    for column in ("usage", "description", "seq"):
        op.drop_column("transactions", column, schema=SCHEMA)
