"""Accounts and the append-only ledger.

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

SCHEMA = "billing"


def upgrade() -> None:
    op.create_table(
        "accounts",
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("balance", sa.BigInteger(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("user_id", name="pk_accounts"),
        sa.CheckConstraint("balance >= 0", name="ck_accounts_balance_not_negative"),
        schema=SCHEMA,
    )
    op.create_table(
        "transactions",
        sa.Column("id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column("user_id", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("balance_after", sa.BigInteger(), nullable=False),
        sa.Column("idempotency_key", sa.Text(), nullable=False),
        sa.Column("graph_id", sa.Text(), nullable=True),
        sa.Column("execution_id", sa.Text(), nullable=True),
        sa.Column("node_id", sa.Text(), nullable=True),
        sa.Column("block_id", sa.Text(), nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False
        ),
        sa.PrimaryKeyConstraint("id", name="pk_transactions"),
        sa.ForeignKeyConstraint(
            ["user_id"], [f"{SCHEMA}.accounts.user_id"], name="fk_transactions_user_id"
        ),
        sa.UniqueConstraint("idempotency_key", name="uq_transactions_idempotency_key"),
        sa.CheckConstraint(
            "kind IN ('grant', 'usage', 'refund', 'top_up', 'adjustment')",
            name="ck_transactions_kind_known",
        ),
        sa.CheckConstraint(
            "(kind = 'usage' AND amount <= 0)"
            " OR (kind IN ('grant', 'refund', 'top_up') AND amount >= 0)"
            " OR kind = 'adjustment'",
            name="ck_transactions_amount_sign",
        ),
        sa.CheckConstraint("balance_after >= 0", name="ck_transactions_balance_after_not_negative"),
        schema=SCHEMA,
    )
    op.create_index(
        "ix_transactions_user_id_created_at",
        "transactions",
        ["user_id", "created_at"],
        schema=SCHEMA,
    )
    op.create_index("ix_transactions_execution_id", "transactions", ["execution_id"], schema=SCHEMA)
    # The ledger is append-only: corrections are new rows (refund, adjustment), never edits.
    op.execute(
        f"""
        CREATE FUNCTION {SCHEMA}.refuse_ledger_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'billing.transactions is append-only (% refused)', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER transactions_append_only
        BEFORE UPDATE OR DELETE OR TRUNCATE ON {SCHEMA}.transactions
        FOR EACH STATEMENT EXECUTE FUNCTION {SCHEMA}.refuse_ledger_change()
        """
    )


def downgrade() -> None:
    op.drop_table("transactions", schema=SCHEMA)
    op.execute(f"DROP FUNCTION {SCHEMA}.refuse_ledger_change()")
    op.drop_table("accounts", schema=SCHEMA)
