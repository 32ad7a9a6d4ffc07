"""Initial schema: sessions, append-only events, app and user state.

Revision ID: 0001
Revises:
Create Date: 2026-11-21

Types are spelled out here (not imported from app code) so this migration never changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Byte-wise key order on Postgres too, so listings and page tokens match Python's str order.
KEY = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")


def upgrade() -> None:
    """Create the session store's tables and indexes."""
    op.create_table(
        "sessions",
        sa.Column("app_name", KEY, nullable=False),
        sa.Column("user_id", KEY, nullable=False),
        sa.Column("id", KEY, nullable=False),
        sa.Column("state", JSON, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("create_time", sa.Double(), nullable=False),
        sa.Column("update_time", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("app_name", "user_id", "id", name="pk_sessions"),
    )
    # list_sessions: newest update first, ties by id, per user or across an app's users.
    op.create_index(
        "ix_sessions_user_recent",
        "sessions",
        ["app_name", "user_id", sa.text("update_time DESC"), sa.text("id DESC")],
    )
    op.create_index(
        "ix_sessions_app_recent",
        "sessions",
        ["app_name", sa.text("update_time DESC"), sa.text("id DESC")],
    )

    op.create_table(
        "events",
        sa.Column("app_name", KEY, nullable=False),
        sa.Column("user_id", KEY, nullable=False),
        sa.Column("session_id", KEY, nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.Text(), nullable=False),
        sa.Column("invocation_id", sa.Text(), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("timestamp", sa.Double(), nullable=False),
        # The event exactly as the API emits it (camelCase JSON, seq included): replayed as is.
        sa.Column("event_json", sa.Text(), nullable=False),
        sa.PrimaryKeyConstraint("app_name", "user_id", "session_id", "seq", name="pk_events"),
        sa.ForeignKeyConstraint(
            ["app_name", "user_id", "session_id"],
            ["sessions.app_name", "sessions.user_id", "sessions.id"],
            name="fk_events_session",
            ondelete="CASCADE",
        ),
    )
    op.create_index("ix_events_id", "events", ["id"])

    op.create_table(
        "app_states",
        sa.Column("app_name", KEY, nullable=False),
        sa.Column("state", JSON, nullable=False),
        sa.Column("update_time", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("app_name", name="pk_app_states"),
    )
    op.create_table(
        "user_states",
        sa.Column("app_name", KEY, nullable=False),
        sa.Column("user_id", KEY, nullable=False),
        sa.Column("state", JSON, nullable=False),
        sa.Column("update_time", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("app_name", "user_id", name="pk_user_states"),
    )


def downgrade() -> None:
    """Drop everything `upgrade` created."""
    op.drop_table("user_states")
    op.drop_table("app_states")
    op.drop_index("ix_events_id", table_name="events")
    op.drop_table("events")
    op.drop_index("ix_sessions_app_recent", table_name="sessions")
    op.drop_index("ix_sessions_user_recent", table_name="sessions")
    op.drop_table("sessions")
