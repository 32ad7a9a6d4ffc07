"""DatabaseMemoryService: long-term memory in the session store's database.

Each remembered event is one row of `memory_entries` (created by the alembic migration
`0004`), unique per (app, user, session, event): adding a session again adds only the events
not remembered yet. Searches are full-text and ranked by relevance:

- Postgres: a `tsvector` column (built with the configured text-search language) under a GIN
  index, queried with `websearch_to_tsquery` and ranked by `ts_rank`;
- SQLite: an FTS5 table (Porter stemming, kept in step by triggers) ranked by `bm25`.

A query matches the memories holding any of its words (stemmed, stop words ignored on
Postgres); those holding more of them come first (bm25 on SQLite also weighs rarer words
higher), then the newest. Searches
and deletes are always scoped to one app and one user.

One instance belongs to one event loop (its connections do).
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime
from typing import Any, ClassVar

import sqlalchemy as sa
from google.genai import types
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import Pool, PoolProxiedConnection
from sqlalchemy.util import greenlet_spawn

from app.errors import AgentServiceError, ConfigError
from app.memory._remembered import remembered
from app.memory.base_memory_service import (
    DEFAULT_SEARCH_LIMIT,
    BaseMemoryService,
    MemoryEntry,
    SearchMemoryResponse,
)
from app.sessions._engine import (
    discard_broken,
    open_engine,
    transaction_engine,
    unavailable_error,
)
from app.sessions.session import Session

logger = logging.getLogger(__name__)

DEFAULT_LANGUAGE = "english"
"""Postgres text-search configuration used when none is given."""

MAX_INDEXED_CHARS = 100_000
"""Only this much of an event's text is searchable (a tsvector holds at most 1 MiB)."""

MAX_QUERY_WORDS = 32
"""Words of a query beyond this many are ignored."""

_WORD = re.compile(r"\w+", re.UNICODE)
_LANGUAGE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")

# Mirrors migrations/versions/0004_memory.py; used to build queries, never to create tables.
_Key = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
_metadata = sa.MetaData()
memory_entries = sa.Table(
    "memory_entries",
    _metadata,
    sa.Column("id", sa.BigInteger, primary_key=True),
    sa.Column("app_name", _Key, nullable=False),
    sa.Column("user_id", _Key, nullable=False),
    sa.Column("session_id", _Key, nullable=False),
    sa.Column("event_id", sa.Text, nullable=False),
    sa.Column("author", sa.Text, nullable=False),
    sa.Column("timestamp", sa.Double, nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("content_json", sa.Text, nullable=False),
    sa.Column("create_time", sa.Double, nullable=False),
    sa.Column("search_vector", postgresql.TSVECTOR),  # Postgres only
)
_m = memory_entries.c

_CONFLICT = "ON CONFLICT (app_name, user_id, session_id, event_id) DO NOTHING"
_POSTGRES_INSERT = sa.text(
    "INSERT INTO memory_entries (app_name, user_id, session_id, event_id, author, timestamp, "
    "text, content_json, create_time, search_vector) VALUES (:app_name, :user_id, :session_id, "
    ":event_id, :author, :timestamp, :text, :content_json, :create_time, "
    f"to_tsvector(CAST(:language AS regconfig), :text)) {_CONFLICT}"
)
_SQLITE_INSERT = sa.text(
    "INSERT INTO memory_entries (app_name, user_id, session_id, event_id, author, timestamp, "
    "text, content_json, create_time) VALUES (:app_name, :user_id, :session_id, :event_id, "
    f":author, :timestamp, :text, :content_json, :create_time) {_CONFLICT}"
)
_POSTGRES_SEARCH_SQL = (
    "SELECT m.event_id, m.author, m.timestamp, m.content_json "
    "FROM memory_entries m, websearch_to_tsquery(CAST($1 AS regconfig), $2) q "
    "WHERE m.app_name = $3 AND m.user_id = $4 AND m.search_vector @@ q "
    "ORDER BY ts_rank(m.search_vector, q) DESC, m.timestamp DESC, m.id DESC LIMIT $5"
)
"""The Postgres search, sent by asyncpg itself (see `_postgres_search`)."""
POSTGRES_SEARCH = sa.text(
    "SELECT m.event_id, m.author, m.timestamp, m.content_json "
    "FROM memory_entries m, websearch_to_tsquery(CAST(:language AS regconfig), :query) q "
    "WHERE m.app_name = :app_name AND m.user_id = :user_id AND m.search_vector @@ q "
    "ORDER BY ts_rank(m.search_vector, q) DESC, m.timestamp DESC, m.id DESC LIMIT :limit"
)
"""The same search through SQLAlchemy; a test checks that both return the same rows."""
# bm25 weighs only the text column (the scope token is the same for all of a user's rows).
_SQLITE_SEARCH = sa.text(
    "SELECT m.event_id, m.author, m.timestamp, m.content_json "
    "FROM memory_fts JOIN memory_entries m ON m.id = memory_fts.rowid "
    "WHERE memory_fts MATCH :query AND m.app_name = :app_name AND m.user_id = :user_id "
    "ORDER BY bm25(memory_fts, 1.0, 0.0), m.timestamp DESC, m.id DESC LIMIT :limit"
)


class DatabaseMemoryService(BaseMemoryService):
    """Remembers session events in a SQL database and searches them by relevance.

    Args:
        db_url: as for `DatabaseSessionService`. Default: the SQLite file sessions use.
        engine: use this engine instead of creating one, e.g. `DatabaseSessionService.engine`
            to share its connection pool; it is not disposed by `close()`.
        language: the Postgres text-search configuration (`english`, `french`, `simple`...)
            that stems and drops stop words; SQLite always uses Porter (English) stemming.
        **engine_kwargs: passed to `create_async_engine` (e.g. `pool_size`).

    Raises:
        ConfigError: the URL is invalid, names an unsupported driver, or `language` is not a
            plain identifier.
    """

    TABLES: ClassVar[tuple[str, ...]] = (memory_entries.name,)
    """The tables this service reads and writes (for readiness checks)."""

    def __init__(
        self,
        db_url: str | None = None,
        *,
        engine: AsyncEngine | None = None,
        language: str = DEFAULT_LANGUAGE,
        **engine_kwargs: Any,
    ) -> None:
        if not _LANGUAGE.match(language):
            raise ConfigError(f"Invalid text-search language {language!r}; use e.g. 'english'.")
        engine, self._owns_engine = open_engine(db_url, engine, engine_kwargs)
        self._engine = engine
        self._postgres = engine.dialect.name == "postgresql"
        # SQLite writers take the write lock up front (BEGIN IMMEDIATE), as elsewhere.
        self._write_engine = engine if self._postgres else transaction_engine(engine)
        self._language = language

    @property
    def engine(self) -> AsyncEngine:
        """The engine in use."""
        return self._engine

    @property
    def language(self) -> str:
        """The Postgres text-search configuration in use."""
        return self._language

    async def check_language(self) -> None:
        """Check that Postgres knows the text-search language (nothing to check on SQLite).

        Raises:
            ConfigError: Postgres has no text-search configuration of that name.
            DatabaseUnavailableError: the database cannot be reached.
        """
        if not self._postgres:
            return
        stmt = sa.text("SELECT 1 FROM pg_ts_config WHERE cfgname = :name")
        async with self._database(), self._engine.connect() as conn:
            found = (await conn.execute(stmt, {"name": self._language.lower()})).first()
        if found is None:
            raise ConfigError(
                f"Postgres has no text-search configuration {self._language!r} (see "
                "`SELECT cfgname FROM pg_ts_config`)."
            )

    async def close(self) -> None:
        """Close the connections (of an engine we created)."""
        if self._owns_engine:
            await self._engine.dispose()

    async def add_session_to_memory(self, session: Session) -> None:
        """Remember the session's user and model text; events already remembered are skipped."""
        now = time.time()
        rows: list[dict[str, Any]] = []
        for event in session.events:
            kept = remembered(event)
            if kept is None:
                continue
            row = {
                "app_name": session.app_name,
                "user_id": session.user_id,
                "session_id": session.id,
                "event_id": event.id,
                "author": event.author,
                "timestamp": event.timestamp,
                # Postgres text cannot hold NUL; the content JSON escapes it.
                "text": kept.text.replace("\x00", " ")[:MAX_INDEXED_CHARS],
                "content_json": kept.content.model_dump_json(by_alias=True, exclude_none=True),
                "create_time": now,
            }
            if self._postgres:
                row["language"] = self._language
            rows.append(row)
        if not rows:
            return
        stmt = _POSTGRES_INSERT if self._postgres else _SQLITE_INSERT
        async with self._database(), self._write_engine.begin() as conn:
            await conn.execute(stmt, rows)
        logger.debug(
            "session added to memory app=%s session=%s events=%d",
            session.app_name,
            session.id,
            len(rows),
        )

    async def search_memory(
        self, *, app_name: str, user_id: str, query: str, limit: int = DEFAULT_SEARCH_LIMIT
    ) -> SearchMemoryResponse:
        """Return the user's memories matching any word of `query`, most relevant first."""
        words = query_words(query)
        if not words or limit < 1:
            return SearchMemoryResponse()
        rows: Sequence[Sequence[Any]]
        if self._postgres:
            # Any word may match (websearch_to_tsquery would require all of them); "or" itself
            # is the operator, so it is dropped as a word.
            text_query = " or ".join(w for w in words if w.lower() != "or")
            async with self._database():
                rows = await self._postgres_search(
                    self._language, text_query, app_name, user_id, limit
                )
        else:
            # Each word quoted: FTS5 operators and syntax in the query are plain words. The
            # scope token (see migration 0004) limits the match to this app and user.
            scope = app_name.encode().hex().upper() + "00" + user_id.encode().hex().upper()
            any_word = " OR ".join(f'"{w}"' for w in words)
            params = {
                "query": f'scope : "{scope}" AND text : ({any_word})',
                "app_name": app_name,
                "user_id": user_id,
                "limit": limit,
            }
            async with self._database(), self._engine.connect() as conn:
                rows = (await conn.execute(_SQLITE_SEARCH, params)).all()
        return SearchMemoryResponse(memories=[_entry(row) for row in rows])

    async def _postgres_search(self, *args: Any) -> Sequence[Sequence[Any]]:
        """Run the search with asyncpg on a pooled connection.

        `preload_memory` searches before every model call; asyncpg's own `fetch` (with its
        prepared-statement cache) costs about a quarter of the CPU of SQLAlchemy's execute
        here (benchmarks/memory_search.py). The pool stays SQLAlchemy's; `discard_broken`
        does the disconnect handling SQLAlchemy would have done.
        """
        connection = await greenlet_spawn(self._engine.sync_engine.raw_connection)
        try:
            driver = connection.driver_connection
            assert driver is not None
            rows: Sequence[Sequence[Any]] = await driver.fetch(_POSTGRES_SEARCH_SQL, *args)
        except BaseException as exc:
            await greenlet_spawn(_discard, connection, self._engine.pool, exc)
            raise
        await greenlet_spawn(connection.close)
        return rows

    async def delete_memory(
        self, *, app_name: str, user_id: str, session_id: str | None = None
    ) -> int:
        """Forget the user's memories (of one session, when given); return how many."""
        stmt = sa.delete(memory_entries).where(_m.app_name == app_name, _m.user_id == user_id)
        if session_id is not None:
            stmt = stmt.where(_m.session_id == session_id)
        async with self._database(), self._write_engine.begin() as conn:
            result = await conn.execute(stmt)
        return int(result.rowcount or 0)

    @asynccontextmanager
    async def _database(self) -> AsyncIterator[None]:
        """Translate connection failures into DatabaseUnavailableError."""
        try:
            yield
        except AgentServiceError:
            raise
        except Exception as exc:
            translated = unavailable_error(exc, self._engine.url)
            if translated is None:
                raise
            raise translated from exc


def _discard(connection: PoolProxiedConnection, pool: Pool, exc: BaseException) -> None:
    try:
        discard_broken(connection, pool, exc)
    finally:
        connection.close()


def query_words(query: str) -> list[str]:
    """Return the distinct words of a query, in order, at most `MAX_QUERY_WORDS`."""
    seen: dict[str, None] = {}
    for word in _WORD.findall(query):
        seen.setdefault(word.lower(), None)
        if len(seen) == MAX_QUERY_WORDS:
            break
    return list(seen)


def _entry(row: Sequence[Any]) -> MemoryEntry:
    event_id, author, timestamp, content_json = row
    return MemoryEntry(
        content=types.Content.model_validate_json(content_json),
        author=author,
        timestamp=datetime.fromtimestamp(timestamp, tz=UTC).isoformat(),
        id=event_id,
    )
