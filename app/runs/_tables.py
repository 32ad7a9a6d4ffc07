"""The tables the runs layer reads and writes, as SQLAlchemy Core objects.

They mirror migration 0003 (and 0001 for `events`); they are never used to create tables.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

Key = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")

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

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("app_name", Key, primary_key=True),
    sa.Column("user_id", Key, primary_key=True),
    sa.Column("id", Key, primary_key=True),
    sa.Column("fence", sa.BigInteger, nullable=False),
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("app_name", Key, primary_key=True),
    sa.Column("user_id", Key, primary_key=True),
    sa.Column("session_id", Key, primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column("invocation_id", sa.Text, nullable=False),
    sa.Column("event_json", sa.Text, nullable=False),
)
