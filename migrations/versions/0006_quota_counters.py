"""Quota counters: per-user runs per window, tokens per window and active runs.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-02

Types are spelled out here (not imported from app code) so this migration never changes.
Only Postgres deployments use the table (SQLite's single process counts in memory); it is
created everywhere so every database has the same schema.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")


def upgrade() -> None:
    """Create `quota_counters`: one row per (user, kind), updated in place."""
    op.create_table(
        "quota_counters",
        sa.Column("user_id", KEY, nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),  # runs, tokens or active
        sa.Column("window_start", sa.Double(), nullable=False),  # epoch seconds; 0 for active
        sa.Column("count", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("user_id", "kind", name="pk_quota_counters"),
    )


def downgrade() -> None:
    """Drop `quota_counters` (every counter starts over)."""
    op.drop_table("quota_counters")
