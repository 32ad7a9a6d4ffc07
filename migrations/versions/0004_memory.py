"""Long-term memory: remembered text turns with a full-text index, and session closes.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-02

`memory_entries` holds one row per remembered event (its text and its content), searchable
through Postgres full-text search (a `tsvector` column in a GIN index, with the app and user
through the `btree_gin` extension) or, on SQLite, an FTS5 table kept in step by triggers. `session_closures` records how far each session was closed
(added to memory), so a close adds only newer events and replicas can claim idle sessions.

Types are spelled out here (not imported from app code) so this migration never changes.
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Byte-wise key order on Postgres too, as in 0001.
KEY = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
# SQLite's rowid alias must be spelled INTEGER PRIMARY KEY; Postgres gets a BIGSERIAL.
ROW_ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

# The app and user as one FTS5 token (hex of each, joined by "00"), so that a search finds
# the user's rows inside the index instead of filtering every user's matches afterwards.
SQLITE_SCOPE = "hex(app_name) || '00' || hex(user_id)"

_SQLITE_FTS = [
    # External-content FTS5 index over memory_entries (text, scope); Porter stemming (English).
    "CREATE VIRTUAL TABLE memory_fts USING fts5(text, scope, content='memory_entries', "
    "content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
    "CREATE TRIGGER memory_entries_ai AFTER INSERT ON memory_entries BEGIN "
    "INSERT INTO memory_fts(rowid, text, scope) VALUES (new.id, new.text, new.scope); END",
    "CREATE TRIGGER memory_entries_ad AFTER DELETE ON memory_entries BEGIN "
    "INSERT INTO memory_fts(memory_fts, rowid, text, scope) "
    "VALUES ('delete', old.id, old.text, old.scope); END",
]


def upgrade() -> None:
    """Create the memory tables and their search index."""
    postgres = op.get_bind().dialect.name == "postgresql"
    columns = [
        sa.Column("id", ROW_ID, primary_key=True, autoincrement=True),
        sa.Column("app_name", KEY, nullable=False),
        sa.Column("user_id", KEY, nullable=False),
        # No foreign key to `sessions`: memory outlives the sessions it came from.
        sa.Column("session_id", KEY, nullable=False),
        sa.Column("event_id", sa.Text(), nullable=False),
        sa.Column("author", sa.Text(), nullable=False),
        sa.Column("timestamp", sa.Double(), nullable=False),
        # The text that is searched, and the content as the API emits it (text parts only).
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("content_json", sa.Text(), nullable=False),
        sa.Column("create_time", sa.Double(), nullable=False),
    ]
    if postgres:
        columns.append(sa.Column("search_vector", postgresql.TSVECTOR(), nullable=False))
    else:
        columns.append(sa.Column("scope", sa.Text(), sa.Computed(SQLITE_SCOPE, persisted=False)))
    op.create_table(
        "memory_entries",
        *columns,
        # One row per event: adding a session twice adds nothing twice. Its index also serves
        # the scoped deletes (per user, per session) and the app + user filter of searches.
        sa.UniqueConstraint(
            "app_name", "user_id", "session_id", "event_id", name="uq_memory_entries_event"
        ),
    )
    if postgres:
        # One GIN index over the scope and the words (btree_gin adds the text columns), so a
        # search reads only that user's matching rows: with a plain GIN on the words, a common
        # word made every user's matches be fetched and filtered (9 ms vs 1.5 ms at 100,000
        # entries, benchmarks/memory_search.py). btree_gin ships with Postgres and is a
        # trusted extension (13+): the database owner may create it.
        op.execute("CREATE EXTENSION IF NOT EXISTS btree_gin")
        op.create_index(
            "ix_memory_entries_search",
            "memory_entries",
            ["app_name", "user_id", "search_vector"],
            postgresql_using="gin",
        )
    else:
        for statement in _SQLITE_FTS:
            op.execute(statement)

    op.create_table(
        "session_closures",
        sa.Column("app_name", KEY, nullable=False),
        sa.Column("user_id", KEY, nullable=False),
        sa.Column("session_id", KEY, nullable=False),
        # Events up to this seq were added to memory by a close.
        sa.Column("closed_seq", sa.BigInteger(), nullable=False),
        sa.Column("close_time", sa.Double(), nullable=False),
        sa.PrimaryKeyConstraint("app_name", "user_id", "session_id", name="pk_session_closures"),
        sa.ForeignKeyConstraint(
            ["app_name", "user_id", "session_id"],
            ["sessions.app_name", "sessions.user_id", "sessions.id"],
            name="fk_session_closures_session",
            ondelete="CASCADE",
        ),
    )


def downgrade() -> None:
    """Drop everything `upgrade` created (and every memory in it)."""
    op.drop_table("session_closures")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_index("ix_memory_entries_search", table_name="memory_entries")
    else:
        op.execute("DROP TRIGGER memory_entries_ad")
        op.execute("DROP TRIGGER memory_entries_ai")
        op.execute("DROP TABLE memory_fts")
    op.drop_table("memory_entries")
