"""Calibration examples: corrections (upheld appeals, re-grades after a rubric edit) that teach the grader.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UTC_DATETIME = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "calibration_examples",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("user_id", sa.Integer(), nullable=False),
        sa.Column("card_id", sa.String(length=64), nullable=False),
        sa.Column("topic", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=20), nullable=False),
        sa.Column("question", sa.Text(), nullable=False),
        sa.Column("answer", sa.Text(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column("band", sa.String(length=20), nullable=False),
        sa.Column("original_score", sa.Float(), nullable=True),
        sa.Column("why", sa.Text(), nullable=False),
        sa.Column("grader", sa.String(length=200), nullable=False),
        sa.Column("created_at", UTC_DATETIME, nullable=False),
        sa.ForeignKeyConstraint(["user_id"], ["users.id"]),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_calibration_examples_user_id", "calibration_examples", ["user_id"])
    op.create_index("ix_calibration_examples_card_id", "calibration_examples", ["card_id"])
    op.create_index("ix_calibration_examples_topic", "calibration_examples", ["topic"])
    op.create_index("ix_calibration_examples_created_at", "calibration_examples", ["created_at"])


def downgrade() -> None:
    op.drop_index("ix_calibration_examples_created_at", table_name="calibration_examples")
    op.drop_index("ix_calibration_examples_topic", table_name="calibration_examples")
    op.drop_index("ix_calibration_examples_card_id", table_name="calibration_examples")
    op.drop_index("ix_calibration_examples_user_id", table_name="calibration_examples")
    op.drop_table("calibration_examples")
