"""The `runs` table as a SQLAlchemy Core object (and the session tables it works with).

It mirrors migration 0003; it is never used to create tables.
"""

from __future__ import annotations

import sqlalchemy as sa

from app.sessions._schema import Key, events, sessions

__all__ = ["events", "metadata", "runs", "sessions"]

metadata = sa.MetaData()

runs = sa.Table(
    "runs",
    metadata,
    sa.Column("app_name", Key, primary_key=True),
    sa.Column("user_id", Key, primary_key=True),
    sa.Column("session_id", Key, primary_key=True),
    sa.Column("invocation_id", Key, primary_key=True),
    sa.Column("status", sa.Text, nullable=False),
    sa.Column("owner", sa.Text),
    sa.Column("lease_expires", sa.Double),
    sa.Column("fence", sa.BigInteger),
    sa.Column("create_time", sa.Double, nullable=False),
    sa.Column("start_time", sa.Double),
    sa.Column("end_time", sa.Double),
    sa.Column("last_seq", sa.BigInteger),
    sa.Column("error", sa.Text),
    sa.Column("cancel_requested", sa.Boolean, nullable=False),
    sa.Column("request", sa.Text),
)
