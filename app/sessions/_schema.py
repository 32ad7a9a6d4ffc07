"""The session store's tables, as SQLAlchemy Core objects for building queries.

The schema itself is created and changed only by the alembic migrations in `migrations/`;
these definitions mirror the latest migration and are never used to create tables.
"""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

metadata = sa.MetaData()

# Keys compare byte-wise ("C" collation on Postgres, BINARY on SQLite), so list order and page
# tokens agree with Python's string order whatever the server's default collation is.
Key = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
Json = sa.JSON().with_variant(JSONB(), "postgresql")

sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("app_name", Key, primary_key=True),
    sa.Column("user_id", Key, primary_key=True),
    sa.Column("id", Key, primary_key=True),
    sa.Column("state", Json, nullable=False),
    sa.Column("seq", sa.BigInteger, nullable=False),
    sa.Column("create_time", sa.Double, nullable=False),
    sa.Column("update_time", sa.Double, nullable=False),
    sa.Column("fence", sa.BigInteger, nullable=False),  # 0003: bumped by each run taking it
)

events = sa.Table(
    "events",
    metadata,
    sa.Column("app_name", Key, primary_key=True),
    sa.Column("user_id", Key, primary_key=True),
    sa.Column("session_id", Key, primary_key=True),
    sa.Column("seq", sa.BigInteger, primary_key=True),
    sa.Column("id", sa.Text, nullable=False),
    sa.Column("invocation_id", sa.Text, nullable=False),
    sa.Column("author", sa.Text, nullable=False),
    sa.Column("timestamp", sa.Double, nullable=False),
    sa.Column("event_json", sa.Text, nullable=False),
)

app_states = sa.Table(
    "app_states",
    metadata,
    sa.Column("app_name", Key, primary_key=True),
    sa.Column("state", Json, nullable=False),
    sa.Column("update_time", sa.Double, nullable=False),
)

user_states = sa.Table(
    "user_states",
    metadata,
    sa.Column("app_name", Key, primary_key=True),
    sa.Column("user_id", Key, primary_key=True),
    sa.Column("state", Json, nullable=False),
    sa.Column("update_time", sa.Double, nullable=False),
)

session_closures = sa.Table(
    "session_closures",
    metadata,
    sa.Column("app_name", Key, primary_key=True),
    sa.Column("user_id", Key, primary_key=True),
    sa.Column("session_id", Key, primary_key=True),
    sa.Column("closed_seq", sa.BigInteger, nullable=False),
    sa.Column("close_time", sa.Double, nullable=False),
)
