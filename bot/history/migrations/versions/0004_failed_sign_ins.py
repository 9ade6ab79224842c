"""Failed sign-ins: wrong passwords per user name and per address, shared by every app process.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "failed_sign_ins",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("key", sa.String(length=300), nullable=False),
        sa.Column("at", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_failed_sign_ins_key", "failed_sign_ins", ["key"])
    op.create_index("ix_failed_sign_ins_at", "failed_sign_ins", ["at"])


def downgrade() -> None:
    op.drop_index("ix_failed_sign_ins_at", table_name="failed_sign_ins")
    op.drop_index("ix_failed_sign_ins_key", table_name="failed_sign_ins")
    op.drop_table("failed_sign_ins")
