"""Runs: one row per invocation, and the session's fencing token.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-02

Types are spelled out here (not imported from app code) so this migration never changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

KEY = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
ACTIVE = sa.text("status = 'running'")


def upgrade() -> None:
    """Create `runs` and add `sessions.fence`."""
    # Bumped whenever a run takes (or is sealed off) the session: appends of a run carry the
    # value they started with and are refused once it moved on, so two writers never interleave.
    op.add_column(
        "sessions",
        sa.Column("fence", sa.BigInteger(), nullable=False, server_default=sa.text("0")),
    )
    op.create_table(
        "runs",
        sa.Column("app_name", KEY, nullable=False),
        sa.Column("user_id", KEY, nullable=False),
        sa.Column("session_id", KEY, nullable=False),
        sa.Column("invocation_id", KEY, nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("owner", sa.Text(), nullable=True),  # replica id while running
        sa.Column("lease_expires", sa.Double(), nullable=True),
        sa.Column("fence", sa.BigInteger(), nullable=True),
        sa.Column("create_time", sa.Double(), nullable=False),
        sa.Column("start_time", sa.Double(), nullable=True),
        sa.Column("end_time", sa.Double(), nullable=True),
        sa.Column("last_seq", sa.BigInteger(), nullable=True),
        sa.Column("error", sa.Text(), nullable=True),  # problem JSON
        sa.Column(
            "cancel_requested", sa.Boolean(), nullable=False, server_default=sa.false()
        ),
        sa.Column("request", sa.Text(), nullable=True),  # a queued run's request JSON
        sa.PrimaryKeyConstraint(
            "app_name", "user_id", "session_id", "invocation_id", name="pk_runs"
        ),
        sa.ForeignKeyConstraint(
            ["app_name", "user_id", "session_id"],
            ["sessions.app_name", "sessions.user_id", "sessions.id"],
            name="fk_runs_session",
            ondelete="CASCADE",
        ),
        sa.CheckConstraint(
            "status IN ('queued', 'running', 'completed', 'error', 'cancelled')",
            name="ck_runs_status",
        ),
    )
    # The database itself keeps a session to one running invocation, whatever the replica.
    op.create_index(
        "ux_runs_one_running",
        "runs",
        ["app_name", "user_id", "session_id"],
        unique=True,
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )
    # GET /runs: newest first per session (also the FIFO order of queued runs, read backwards).
    op.create_index(
        "ix_runs_recent",
        "runs",
        ["app_name", "user_id", "session_id", "create_time", "invocation_id"],
    )
    # The sweeper: running runs by lease expiry.
    op.create_index(
        "ix_runs_lease",
        "runs",
        ["lease_expires"],
        postgresql_where=ACTIVE,
        sqlite_where=ACTIVE,
    )


def downgrade() -> None:
    """Drop `runs` and `sessions.fence`."""
    op.drop_table("runs")
    with op.batch_alter_table("sessions") as batch:
        batch.drop_column("fence")
