"""A credit cap per execution (`max_credits` on execute).

Revision ID: 0004
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column("executions", sa.Column("max_credits", sa.BigInteger), schema="executor")


def downgrade() -> None:
    op.drop_column("executions", "max_credits", schema="executor")
