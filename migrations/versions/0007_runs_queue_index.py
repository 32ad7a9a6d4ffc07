"""Queued runs get their own partial index.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-02

The queue of a session (its `queued` runs, oldest first) was read through `ix_runs_recent`,
which holds every run the session ever had: a long-lived session made each read of its queue
head, and each run end that checks for waiters, walk its whole history. This index holds only
the queued rows, so a run that never queues costs it nothing to maintain.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

QUEUED = sa.text("status = 'queued'")


def upgrade() -> None:
    """Create `ix_runs_queued` (session, create time, invocation) over queued runs."""
    op.create_index(
        "ix_runs_queued",
        "runs",
        ["app_name", "user_id", "session_id", "create_time", "invocation_id"],
        postgresql_where=QUEUED,
        sqlite_where=QUEUED,
    )


def downgrade() -> None:
    """Drop `ix_runs_queued`."""
    op.drop_index("ix_runs_queued", table_name="runs")
