"""Artifacts: versioned files of sessions and users, next to the sessions they belong to.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-28

Types are spelled out here (not imported from app code) so this migration never changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Byte-wise key order on Postgres too, as in 0001.
KEY = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    """Create the `artifacts` table: one row per stored version."""
    op.create_table(
        "artifacts",
        sa.Column("app_name", KEY, nullable=False),
        sa.Column("user_id", KEY, nullable=False),
        # '' for `user:` artifacts (shared by the user's sessions): a primary key column
        # cannot be NULL. No foreign key to `sessions`: user-scoped rows have no session, and
        # the seeds' artifact services do not require the session to exist.
        sa.Column("session_id", KEY, nullable=False),
        sa.Column("filename", KEY, nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("mime_type", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=True),
        sa.Column("data", sa.LargeBinary(), nullable=True),  # bytea / BLOB
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("custom_metadata", JSON, nullable=False),
        sa.Column("create_time", sa.Double(), nullable=False),
        # The key's prefixes serve every query: one artifact's versions, a session's names.
        sa.PrimaryKeyConstraint(
            "app_name", "user_id", "session_id", "filename", "version", name="pk_artifacts"
        ),
    )


def downgrade() -> None:
    """Drop the `artifacts` table (and every artifact in it)."""
    op.drop_table("artifacts")
