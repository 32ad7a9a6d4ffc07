"""API keys: who may call the service (AGENT_SERVICE_AUTH=api_key), stored hashed.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-02

Types are spelled out here (not imported from app code) so this migration never changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    """Create the `api_keys` table: one row per key, its secret only as a SHA-256 digest."""
    op.create_table(
        "api_keys",
        sa.Column("key_id", KEY, nullable=False),  # the public part of the key
        sa.Column("secret_sha256", sa.Text(), nullable=False),
        sa.Column("user_id", KEY, nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False),
        sa.Column("apps", JSON, nullable=True),  # NULL: every app
        sa.Column("created_at", sa.Double(), nullable=False),
        sa.Column("expires_at", sa.Double(), nullable=True),
        sa.Column("revoked_at", sa.Double(), nullable=True),
        sa.PrimaryKeyConstraint("key_id", name="pk_api_keys"),
    )


def downgrade() -> None:
    """Drop the `api_keys` table (every key stops working)."""
    op.drop_table("api_keys")
