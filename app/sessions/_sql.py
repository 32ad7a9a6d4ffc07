"""The session store's SQL, per dialect: Postgres (asyncpg) and SQLite (aiosqlite).

Postgres runs the hot paths as single statements on an autocommit connection: loading a session
for a turn is one round trip (row, app/user state and new events together), `append_event` is
one data-modifying CTE (seq guard, state merge, event insert, app/user upserts), and so are
`create_session` and a page of `list_events`. These four are sent by asyncpg itself on the
connection under SQLAlchemy's pooled one (`$n` parameters, asyncpg's prepared-statement cache),
for about half the CPU of `AsyncConnection.execute`. The pool, its pre-ping, URL handling and
engine settings stay SQLAlchemy's; `discard_broken` does the disconnect handling SQLAlchemy
would have done. SQLite is local and cheap per statement, so it runs plain statements inside
one transaction instead.

Nothing here knows about the cache or `Session` objects; `DatabaseSessionService` does.
"""

from __future__ import annotations

import abc
import asyncio
import json
import time
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

from app.errors import RunInProgressError
from app.sessions._engine import dumps_json, transaction_engine
from app.sessions._hot_connections import HotConnections
from app.sessions._schema import app_states, sessions, user_states
from app.sessions.fence import SessionClaim

SessionKey = tuple[str, str, str]
"""(app_name, user_id, session_id)"""

NO_LIMIT = 2**62
"""Stands for "no bound" in integer window parameters."""


class SessionExistsError(Exception):
    """`create` found a session with that key already stored."""


@dataclass(frozen=True)
class Window:
    """Which events a load must return, relative to the stored `seq` S.

    Events with `seq > max(floor, S - recent)`; when the caller's cache holds the session from
    `cached_base` up to `cached_seq` (same `create_time`) and that covers the window, only
    events after `cached_seq` are fetched.
    """

    floor: int = 0
    recent: int = NO_LIMIT
    cached_seq: int = -1
    cached_create_time: float = -1.0
    cached_base: int = NO_LIMIT

    def lower(self, seq: int) -> int:
        """The `seq` (exclusive) the caller needs events from."""
        return max(self.floor, seq - self.recent)

    def uses_cache(self, seq: int, create_time: float) -> bool:
        """Whether the cached events plus the fetched ones cover the window."""
        return (
            create_time == self.cached_create_time
            and seq >= self.cached_seq
            and self.lower(seq) >= self.cached_base
        )

    def fetch_after(self, seq: int, create_time: float) -> int:
        """The `seq` (exclusive) from which events are read from the database."""
        return self.cached_seq if self.uses_cache(seq, create_time) else self.lower(seq)


@dataclass(frozen=True)
class LoadedSession:
    """A session row as read for `get_session`."""

    seq: int
    create_time: float
    update_time: float
    state: dict[str, Any] | None
    """Session-scoped state; None when the caller's cache is current (same seq)."""
    app_state: dict[str, Any]
    user_state: dict[str, Any]
    event_jsons: Sequence[str]
    """Stored event JSON with `seq > window.fetch_after(seq, create_time)`, oldest first."""


@dataclass(frozen=True)
class RunEnding:
    """A run's end, stored by the statement that stores its last event."""

    invocation_id: str
    status: str
    end_time: float
    error_json: str | None
    announce: tuple[str, str] | None
    """(channel, origin) of a NOTIFY of the end sent along when `watched` or the session has
    queued runs (see `app.runs.sql_store`)."""
    watched: bool


@dataclass(frozen=True)
class NewEvent:
    """An event row to insert, with the deltas its append applies."""

    key: SessionKey
    expected_seq: int
    event_id: str
    invocation_id: str
    author: str
    timestamp: float
    event_json: str
    session_delta: dict[str, Any]
    app_delta: dict[str, Any]
    user_delta: dict[str, Any]
    fence: int | None = None
    """When set, the append also requires the session's fencing token to equal it."""
    claim: SessionClaim | None = None
    """When set (stores with `claims_on_append`), the append also takes the session for the
    claim's run, and fills in the claim's fencing token."""

    def params(self) -> dict[str, Any]:
        """Bind parameters shared by both dialects' append statements."""
        app_name, user_id, session_id = self.key
        return {
            "app": app_name,
            "user": user_id,
            "sid": session_id,
            "expected": self.expected_seq,
            "event_id": self.event_id,
            "invocation_id": self.invocation_id,
            "author": self.author,
            "ts": self.timestamp,
            "event_json": self.event_json,
            "fence": self.fence,
        }


class SessionSql(abc.ABC):
    """The statements one dialect needs; every method opens and closes its own connection."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self.tx_engine = transaction_engine(engine)

    @staticmethod
    def for_engine(engine: AsyncEngine) -> SessionSql:
        """Return the implementation for the engine's dialect."""
        if engine.dialect.name == "postgresql":
            return PostgresSql(engine)
        if engine.dialect.name == "sqlite":
            return SqliteSql(engine)
        raise ValueError(f"unsupported dialect {engine.dialect.name!r}")

    @asynccontextmanager
    async def write_transaction(self) -> AsyncIterator[AsyncConnection]:
        """Yield a connection in a write transaction, committed on success."""
        async with self.tx_engine.begin() as conn:
            yield conn

    @abc.abstractmethod
    async def load(self, key: SessionKey, window: Window) -> LoadedSession | None:
        """Read the session row, its app/user state and the events the window asks for."""

    claims_on_append: bool = False
    """Whether `append` can take the session for a run in the same statement (`claim`)."""

    @abc.abstractmethod
    async def append(self, event: NewEvent) -> float | None:
        """Store the event if the session's seq is still `expected_seq`.

        Returns the session's create_time, or None when nothing was written (missing or stale).

        Raises:
            RunInProgressError: with `event.claim`, another run holds the session.
        """

    async def append_and_end(self, event: NewEvent, ending: RunEnding) -> tuple[float, bool] | None:
        """`append` that also ends the run holding the session with `event.fence` (stores
        with `claims_on_append`); return (create_time, whether the run was ended), or None
        when nothing was written."""
        raise TypeError("this session store cannot end a run with an append")

    @abc.abstractmethod
    async def list_events(
        self, key: SessionKey, after_seq: int, limit: int | None
    ) -> list[str] | None:
        """Return event JSON after a cursor, or None when the session does not exist."""

    @abc.abstractmethod
    async def create(
        self,
        key: SessionKey,
        state: dict[str, Any],
        app_delta: dict[str, Any],
        user_delta: dict[str, Any],
        now: float,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Insert a session row and merge the app/user deltas; return (app, user) state.

        Raises:
            SessionExistsError: the session exists (and nothing was written).
        """

    async def current_seq(self, key: SessionKey) -> tuple[int, int] | None:
        """Return the stored (seq, fence), or None when the session does not exist."""
        async with self.engine.connect() as conn:
            row = (await conn.execute(_SEQ_FENCE, _key_params(key))).one_or_none()
            return None if row is None else (int(row[0]), int(row[1]))

    async def delete(self, key: SessionKey) -> None:
        """Delete the session; its events go with it (ON DELETE CASCADE)."""
        async with self.write_transaction() as conn:
            await conn.execute(_DELETE, _key_params(key))

    async def list_sessions(
        self,
        app_name: str,
        user_id: str | None,
        after: tuple[float, str] | None,
        limit: int,
    ) -> list[Any]:
        """Return session rows (user_id, id, state, seq, update_time, app_state, user_state)."""
        s = sessions
        app_state = (
            sa.select(app_states.c.state)
            .where(app_states.c.app_name == s.c.app_name)
            .scalar_subquery()
        )
        stmt = (
            sa.select(
                s.c.user_id,
                s.c.id,
                s.c.state,
                s.c.seq,
                s.c.update_time,
                app_state.label("app_state"),
                user_states.c.state.label("user_state"),
            )
            .select_from(
                s.outerjoin(
                    user_states,
                    sa.and_(
                        user_states.c.app_name == s.c.app_name,
                        user_states.c.user_id == s.c.user_id,
                    ),
                )
            )
            .where(s.c.app_name == sa.bindparam("app"))
            .order_by(s.c.update_time.desc(), s.c.id.desc())
            .limit(sa.bindparam("limit"))
        )
        params: dict[str, Any] = {"app": app_name, "limit": limit}
        if user_id is not None:
            stmt = stmt.where(s.c.user_id == sa.bindparam("user"))
            params["user"] = user_id
        if after is not None:
            stmt = stmt.where(
                sa.tuple_(s.c.update_time, s.c.id)
                < sa.tuple_(sa.bindparam("after_time"), sa.bindparam("after_id"))
            )
            params["after_time"], params["after_id"] = after
        async with self.engine.connect() as conn:
            return list((await conn.execute(stmt, params)).all())

    async def close(self) -> None:
        """Release what the statements keep between calls (nothing by default)."""
        return

    async def ping(self) -> None:
        """Run a trivial query."""
        async with self.engine.connect() as conn:
            await conn.execute(sa.text("SELECT 1"))


class PostgresSql(SessionSql):
    """Postgres: single statements on autocommit connections, sent by asyncpg itself."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        import asyncpg

        self._unique_violation = asyncpg.UniqueViolationError
        # A prepared statement whose result type a schema change altered: the server refuses
        # it before running it, so a retry is safe (writes included). asyncpg clears its cache
        # and retries once by itself; a second refusal (another change meanwhile) is retried
        # here once more. (Not OutdatedSchemaCacheError: that one comes after the statement
        # ran, and these statements return no composite types that could raise it.)
        self._stale_statement = asyncpg.InvalidCachedStatementError
        self._connections = HotConnections(engine)
        self._append_sql: dict[tuple[bool, bool, bool, bool, bool, int], str] = {}
        self._create_sql: dict[tuple[bool, bool], str] = {}

    async def _fetchrow(self, query: str, *args: Any) -> Any:
        """Run one statement on a pooled connection's asyncpg driver; return its first row.

        The connection comes from `HotConnections` (the last one a statement used, else a
        checkout from the engine's pool, with its pre-ping, reconnects and connect errors as
        configured) and the statement is awaited on asyncpg directly, without SQLAlchemy's
        statement layer or a greenlet. A failure that leaves the connection (or the server)
        unusable invalidates it, and on a lost server the rest of the pool too.
        """
        connection = await self._connections.acquire()
        driver = connection.driver_connection
        assert driver is not None
        try:
            try:
                row = await driver.fetchrow(query, *args)
            except self._stale_statement:
                row = await driver.fetchrow(query, *args)
        except BaseException as exc:
            await self._connections.discard(connection, exc)
            raise
        await self._connections.release(connection)
        return row

    async def fetchrow(self, query: str, *args: Any) -> Any:
        """Run one hot-path statement of another package on the same connections ($n params)."""
        return await self._fetchrow(query, *args)

    async def close(self) -> None:
        """Return the connections kept for the hot paths to the pool."""
        await self._connections.close()

    async def load(self, key: SessionKey, window: Window) -> LoadedSession | None:
        """One round trip: row, app/user state and the missing events as a text[]."""
        row = await self._fetchrow(
            _PG_LOAD,
            *key,
            window.floor,
            window.recent,
            window.cached_seq,
            window.cached_create_time,
            window.cached_base,
        )
        if row is None:
            return None
        seq, create_time, update_time, state, app_state, user_state, event_jsons = row
        return LoadedSession(
            seq=seq,
            create_time=create_time,
            update_time=update_time,
            state=None if state is None else _json(state),
            app_state=_json(app_state) or {},
            user_state=_json(user_state) or {},
            event_jsons=event_jsons,
        )

    claims_on_append = True

    async def append(self, event: NewEvent) -> float | None:
        """One statement: guarded seq bump, state merge, event insert, app/user upserts (and,
        with a claim, the take of the session for its run)."""
        row = await self._append_row(event)
        return None if row is None else float(row[0])

    async def _append_row(self, event: NewEvent, ending: RunEnding | None = None) -> Any:
        claim = event.claim
        flags = (
            bool(event.session_delta),
            bool(event.app_delta),
            bool(event.user_delta),
            event.fence is not None,
            claim is not None,
            0 if ending is None else (2 if ending.announce is not None else 1),
        )
        query = self._append_sql.get(flags)
        if query is None:
            query = self._append_sql[flags] = _pg_append_statement(*flags)
        args: list[Any] = [
            *event.key,
            event.expected_seq,
            event.event_id,
            event.invocation_id,
            event.author,
            event.timestamp,
            event.event_json,
        ]
        for delta in (event.session_delta, event.app_delta, event.user_delta):
            if delta:
                args.append(dumps_json(delta))
        if event.fence is not None:
            args.append(event.fence)
        if ending is not None:
            args += [ending.invocation_id, ending.status, ending.end_time, ending.error_json]
            if ending.announce is not None:
                args += [*ending.announce, ending.watched]
        if claim is None:
            return await self._fetchrow(query, *args)
        now = time.time()
        args += [claim.invocation_id, claim.owner, claim.lease_seconds, now]
        try:
            row = await self._fetchrow(query, *args)
        except self._unique_violation as exc:  # ux_runs_one_running: nothing was written
            raise RunInProgressError(
                f"A run is already in progress on session {event.key[2]}."
            ) from exc
        if row is not None:
            claim.fence, claim.create_time = row[1], row[2]
        return row

    async def append_and_end(self, event: NewEvent, ending: RunEnding) -> tuple[float, bool] | None:
        """See `SessionSql.append_and_end`: one statement."""
        assert event.fence is not None
        row = await self._append_row(event, ending)
        return None if row is None else (float(row[0]), bool(row[1]))

    async def list_events(
        self, key: SessionKey, after_seq: int, limit: int | None
    ) -> list[str] | None:
        """One round trip: existence and the page of events."""
        row = await self._fetchrow(_PG_LIST_EVENTS, *key, after_seq, limit)
        return None if row is None else list(row[0])

    async def create(
        self,
        key: SessionKey,
        state: dict[str, Any],
        app_delta: dict[str, Any],
        user_delta: dict[str, Any],
        now: float,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """One statement: insert the row, upsert app/user deltas, return app/user state."""
        flags = (bool(app_delta), bool(user_delta))
        query = self._create_sql.get(flags)
        if query is None:
            query = self._create_sql[flags] = _pg_create_statement(*flags)
        args: list[Any] = [*key, dumps_json(state), now]
        for delta in (app_delta, user_delta):
            if delta:
                args.append(dumps_json(delta))
        try:
            row = await self._fetchrow(query, *args)
        except self._unique_violation as exc:
            raise SessionExistsError(key[2]) from exc
        return _json(row[0]) or {}, _json(row[1]) or {}


class SqliteSql(SessionSql):
    """SQLite: a few statements per call inside one (BEGIN IMMEDIATE, for writes) transaction."""

    def __init__(self, engine: AsyncEngine) -> None:
        super().__init__(engine)
        # SQLite has one writer at a time. Queue this process's writers here, where a waiter
        # wakes as soon as the lock is free, instead of in SQLite's busy handler, which polls
        # with sleeps (5x slower under contention). Other processes still meet BEGIN IMMEDIATE.
        self._write_lock = asyncio.Lock()

    @asynccontextmanager
    async def write_transaction(self) -> AsyncIterator[AsyncConnection]:
        """Yield a connection in a BEGIN IMMEDIATE transaction, one writer per process."""
        async with self._write_lock, self.tx_engine.begin() as conn:
            yield conn

    async def create(
        self,
        key: SessionKey,
        state: dict[str, Any],
        app_delta: dict[str, Any],
        user_delta: dict[str, Any],
        now: float,
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        """Insert the row, upsert app/user deltas and read app/user state in one transaction."""
        app_name, user_id, session_id = key
        try:
            async with self.write_transaction() as conn:
                await conn.execute(
                    sa.insert(sessions),
                    {
                        "app_name": app_name,
                        "user_id": user_id,
                        "id": session_id,
                        "state": state,
                        "seq": 0,
                        "create_time": now,
                        "update_time": now,
                    },
                )
                if app_delta:
                    keys = {"app_name": app_name}
                    await self._upsert_state(conn, app_states, keys, app_delta, now)
                if user_delta:
                    keys = {"app_name": app_name, "user_id": user_id}
                    await self._upsert_state(conn, user_states, keys, user_delta, now)
                params = {"app": app_name, "user": user_id}
                row = (await conn.execute(_SCOPED_STATES, params)).one()
        except sa_exc.IntegrityError as exc:
            raise SessionExistsError(session_id) from exc
        return _json(row.app_state) or {}, _json(row.user_state) or {}

    async def load(self, key: SessionKey, window: Window) -> LoadedSession | None:
        """Row and state, then the missing events, in one read transaction."""
        params = _key_params(key)
        async with self.engine.connect() as conn:
            result = await conn.execute(_SQLITE_LOAD_ROW, {**params, **_window_params(window)})
            row = result.one_or_none()
            if row is None:
                return None
            after = window.fetch_after(row.seq, row.create_time)
            jsons: Sequence[str] = []
            if after < row.seq:
                events = await conn.execute(
                    _SQLITE_EVENTS, {**params, "after": after, "upto": row.seq, "limit": -1}
                )
                jsons = events.scalars().all()
        return LoadedSession(
            seq=row.seq,
            create_time=row.create_time,
            update_time=row.update_time,
            state=_json(row.state),
            app_state=_json(row.app_state) or {},
            user_state=_json(row.user_state) or {},
            event_jsons=jsons,
        )

    async def append(self, event: NewEvent) -> float | None:
        """Guarded UPDATE ... RETURNING, INSERT, upserts; all under the database write lock."""
        params = event.params()
        async with self.write_transaction() as conn:
            delta = event.session_delta
            fenced = event.fence is not None
            if not delta:
                stmt = _SQLITE_BUMPS["bump", fenced]
            elif _merge_patch_safe(delta):
                stmt = _SQLITE_BUMPS["patch", fenced]
                params["delta"] = dumps_json(delta)
            else:
                # json_patch would drop None values and deep-merge dicts; merge in Python. Safe:
                # BEGIN IMMEDIATE holds the write lock, and the UPDATE re-checks the seq.
                result = await conn.execute(_SQLITE_STATE, _key_params(event.key))
                stored = result.scalar_one_or_none()
                if stored is None:
                    return None
                stmt = _SQLITE_BUMPS["replace", fenced]
                params["state"] = dumps_json({**json.loads(stored), **delta})
            create_time = (await conn.execute(stmt, params)).scalar_one_or_none()
            if create_time is None:
                return None
            await conn.execute(_SQLITE_INSERT_EVENT, params)
            app_name, user_id, _ = event.key
            if event.app_delta:
                keys = {"app_name": app_name}
                await self._upsert_state(conn, app_states, keys, event.app_delta, event.timestamp)
            if event.user_delta:
                keys = {"app_name": app_name, "user_id": user_id}
                await self._upsert_state(conn, user_states, keys, event.user_delta, event.timestamp)
            return float(create_time)

    async def list_events(
        self, key: SessionKey, after_seq: int, limit: int | None
    ) -> list[str] | None:
        """Existence, then the page of events, in one read transaction."""
        params = _key_params(key)
        async with self.engine.connect() as conn:
            seq = (await conn.execute(_SEQ, params)).scalar_one_or_none()
            if seq is None:
                return None
            result = await conn.execute(
                _SQLITE_EVENTS,
                {
                    **params,
                    "after": after_seq,
                    "upto": seq,
                    "limit": -1 if limit is None else limit,
                },
            )
            return list(result.scalars().all())

    async def _upsert_state(
        self,
        conn: AsyncConnection,
        table: sa.Table,
        keys: dict[str, str],
        delta: dict[str, Any],
        now: float,
    ) -> None:
        """Merge `delta` into the row of `table` at `keys` (top-level keys; None kept)."""
        if _merge_patch_safe(delta):
            stmt = sqlite_insert(table).values(**keys, state=delta, update_time=now)
            merged: sa.ColumnElement[Any] = sa.func.json_patch(table.c.state, stmt.excluded.state)
        else:
            # As in append(): the write lock is held, so read-modify-write is safe.
            where = sa.and_(*(table.c[name] == value for name, value in keys.items()))
            current = (await conn.execute(sa.select(table.c.state).where(where))).scalar()
            stmt = sqlite_insert(table).values(
                **keys, state={**(current or {}), **delta}, update_time=now
            )
            merged = stmt.excluded.state
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys),
            set_={"state": merged, "update_time": stmt.excluded.update_time},
        )
        await conn.execute(stmt)


def _merge_patch_safe(delta: dict[str, Any]) -> bool:
    """Whether SQLite's json_patch (RFC 7396) merges `delta` exactly like dict.update."""
    return not any(value is None or isinstance(value, dict) for value in delta.values())


def _json(value: Any) -> Any:
    """Decode JSON text (SQLite, untyped queries); decoded values pass through (asyncpg)."""
    return json.loads(value) if isinstance(value, str | bytes) else value


def _key_params(key: SessionKey) -> dict[str, Any]:
    return {"app": key[0], "user": key[1], "sid": key[2]}


def _window_params(window: Window) -> dict[str, Any]:
    return {
        "floor": window.floor,
        "recent": window.recent,
        "c_seq": window.cached_seq,
        "c_ctime": window.cached_create_time,
        "c_base": window.cached_base,
    }


_KEY_WHERE = "s.app_name = :app AND s.user_id = :user AND s.id = :sid"

_SEQ = sa.text(f"SELECT s.seq FROM sessions s WHERE {_KEY_WHERE}")
_SEQ_FENCE = sa.text(f"SELECT s.seq, s.fence FROM sessions s WHERE {_KEY_WHERE}")

_DELETE = sa.text("DELETE FROM sessions WHERE app_name = :app AND user_id = :user AND id = :sid")

_SCOPED_STATES = sa.text(
    "SELECT (SELECT a.state FROM app_states a WHERE a.app_name = :app) AS app_state, "
    "(SELECT u.state FROM user_states u WHERE u.app_name = :app AND u.user_id = :user) "
    "AS user_state"
)

# The session's state is sent only when the caller's cached copy is older (seq moves with
# every state change, so an equal seq means an equal state).
_LOAD_COLUMNS = """
    s.seq, s.create_time, s.update_time,
    CASE WHEN s.create_time = :c_ctime AND s.seq = :c_seq THEN NULL ELSE s.state END AS state,
    (SELECT a.state FROM app_states a WHERE a.app_name = s.app_name) AS app_state,
    (SELECT u.state FROM user_states u
      WHERE u.app_name = s.app_name AND u.user_id = s.user_id) AS user_state"""

# Postgres statements take asyncpg's positional parameters ($1 = app_name, $2 = user_id,
# $3 = session id, then per statement), cast where Postgres could not infer their type. JSON
# goes in as text (`::jsonb`); jsonb comes out as text or, with SQLAlchemy's codecs on the
# connection, already decoded: `_json` takes either.
_PG_KEY_WHERE = "s.app_name = $1 AND s.user_id = $2 AND s.id = $3"

# The window ($4 floor, $5 recent, $6 cached seq, $7 cached create_time, $8 cached base) under
# the same rules as _LOAD_COLUMNS and Window.fetch_after(), evaluated against the row.
_PG_LOAD = f"""
SELECT s.seq, s.create_time, s.update_time,
    CASE WHEN s.create_time = $7::float8 AND s.seq = $6::int8 THEN NULL ELSE s.state END,
    (SELECT a.state FROM app_states a WHERE a.app_name = s.app_name),
    (SELECT u.state FROM user_states u WHERE u.app_name = s.app_name AND u.user_id = s.user_id),
    ARRAY(
      SELECT e.event_json FROM events e
       WHERE e.app_name = s.app_name AND e.user_id = s.user_id AND e.session_id = s.id
         AND e.seq > CASE
               WHEN s.create_time = $7::float8 AND s.seq >= $6::int8
                    AND GREATEST($4::int8, s.seq - $5::int8) >= $8::int8 THEN $6::int8
               ELSE GREATEST($4::int8, s.seq - $5::int8)
             END
       ORDER BY e.seq)
  FROM sessions s
 WHERE {_PG_KEY_WHERE}
"""

# $4 after (exclusive), $5 limit (NULL: no limit).
_PG_LIST_EVENTS = f"""
SELECT ARRAY(
      SELECT e.event_json FROM events e
       WHERE e.app_name = s.app_name AND e.user_id = s.user_id AND e.session_id = s.id
         AND e.seq > $4::int8
       ORDER BY e.seq
       LIMIT $5::int8)
  FROM sessions s
 WHERE {_PG_KEY_WHERE}
"""

_PG_MERGE_APP_STATE = """
  ON CONFLICT (app_name) DO UPDATE
     SET state = app_states.state || excluded.state, update_time = excluded.update_time"""
_PG_MERGE_USER_STATE = """
  ON CONFLICT (app_name, user_id) DO UPDATE
     SET state = user_states.state || excluded.state, update_time = excluded.update_time"""


def _pg_append_statement(
    session_delta: bool,
    app_delta: bool,
    user_delta: bool,
    fenced: bool = False,
    claim: bool = False,
    ending: int = 0,
) -> str:
    """Build the single-statement append for one combination of deltas.

    Parameters: $1-$3 the key, $4 expected seq, $5 event id, $6 invocation id, $7 author,
    $8 timestamp, $9 event JSON, then the JSON of each delta present (session, app, user),
    then the fencing token when `fenced`, then with `ending` the run's invocation id, status,
    end time and error JSON (and with `ending` 2 a NOTIFY's channel, payload and whether the
    run is watched), then with `claim` the run's invocation id, owner, lease (seconds, on the
    database's clock) and start time. Every part reads from `s`, the guarded UPDATE: when the
    seq moved on (stale), the fence moved on (the run lost the session) or the row is gone,
    `s` is empty, and the statement writes nothing and returns no row.

    With `claim` the append also takes the session for a new run (a fresh invocation id), as
    `app.runs.sql_store` does on its own: it bumps the session's fencing token and records the
    run as running (a resumed invocation, whose row exists, is taken by the runs layer). The
    UPDATE locks the session row, so concurrent claims queue there; when another run is
    running the INSERT violates ux_runs_one_running and the whole statement (the event
    included) rolls back. The statement then returns the new token and the run's create time.

    With `ending` (a fenced append) the append also ends the run that holds the session with
    that token, as `app.runs.sql_store`'s finish does on its own (its last seq is this
    event's), and returns whether it did.
    """
    assert not (claim and ending), "a run's first append is never its last here"
    params = (f"${n}" for n in range(10, 30))
    set_state = f", state = sessions.state || {next(params)}::jsonb" if session_delta else ""
    app_param = f"{next(params)}::jsonb" if app_delta else ""
    user_param = f"{next(params)}::jsonb" if user_delta else ""
    fence = next(params) if fenced else ""
    fence_guard = f" AND fence = {fence}::int8" if fenced else ""
    set_fence = ", fence = fence + 1" if claim else ""
    ctes = [
        f"""s AS (
  UPDATE sessions
     SET seq = seq + 1, update_time = $8::float8{set_state}{set_fence}
   WHERE app_name = $1 AND user_id = $2 AND id = $3 AND seq = $4::int8{fence_guard}
  RETURNING seq, create_time, fence)""",
        """e AS (
  INSERT INTO events
    (app_name, user_id, session_id, seq, id, invocation_id, author, timestamp, event_json)
  SELECT $1::text, $2::text, $3::text, s.seq, $5::text, $6::text, $7::text, $8::float8, $9::text
    FROM s)""",
    ]
    if app_delta:
        ctes.append(
            f"""a AS (
  INSERT INTO app_states (app_name, state, update_time)
  SELECT $1::text, {app_param}, $8::float8 FROM s{_PG_MERGE_APP_STATE})"""
        )
    if user_delta:
        ctes.append(
            f"""u AS (
  INSERT INTO user_states (app_name, user_id, state, update_time)
  SELECT $1::text, $2::text, {user_param}, $8::float8 FROM s{_PG_MERGE_USER_STATE})"""
        )
    selected = ["s.create_time"]
    if ending:
        assert fenced, "a run's end rides only on a fenced append"
        inv, status, end_time, error = (next(params) for _ in range(4))
        ctes.append(
            f"""x AS (
  UPDATE runs
     SET status = {status}::text, end_time = {end_time}::float8, error = {error}::text,
         last_seq = s.seq, owner = NULL, lease_expires = NULL, request = NULL
    FROM s
   WHERE runs.app_name = $1 AND runs.user_id = $2 AND runs.session_id = $3
     AND runs.invocation_id = {inv}::text AND runs.status = 'running'
     AND runs.fence = {fence}::int8
  RETURNING 1)"""
        )
        selected.append("(SELECT count(*) FROM x)")
        if ending == 2:
            channel, origin, watched = (next(params) for _ in range(3))
            selected.append(pg_notify_run_end("x", channel, origin, inv, watched))
    if claim:
        inv, owner, lease, now = (next(params) for _ in range(4))
        ctes.append(
            f"""r AS (
  INSERT INTO runs (app_name, user_id, session_id, invocation_id, status, owner,
                    lease_expires, fence, create_time, start_time, cancel_requested)
  SELECT $1::text, $2::text, $3::text, {inv}::text, 'running', {owner}::text,
         extract(epoch FROM clock_timestamp()) + {lease}::float8, s.fence, {now}::float8,
         {now}::float8, false
    FROM s
  RETURNING fence, create_time)"""
        )
        selected += ["r.fence", "r.create_time"]
    source = "s, r" if claim else "s"
    return "WITH " + ",\n".join(ctes) + f"\nSELECT {', '.join(selected)} FROM {source}"


def pg_notify_run_end(ended: str, channel: str, origin: str, inv: str, watched: str) -> str:
    """A scalar subquery that announces a run's end when another replica may wait for it.

    `ended` names a CTE with a row when the statement ended the run; the others are
    parameters (`$n`): the channel, the notifier's origin, the invocation id (the session's
    key being $1-$3) and whether the run is watched from another replica. Without a watcher,
    only the session's queued runs (whose waiters may be on any replica) need the NOTIFY. The
    payload is `PostgresNotifier`'s: `[origin, "end", app, user, session, invocation]`.
    """
    payload = f"json_build_array({origin}::text, 'end', $1::text, $2::text, $3::text, {inv}::text)"
    return f"""(SELECT pg_notify({channel}::text, {payload}::text) FROM {ended}
     WHERE {watched}::bool OR EXISTS (
       SELECT 1 FROM runs q
        WHERE q.app_name = $1 AND q.user_id = $2 AND q.session_id = $3
          AND q.status = 'queued'))"""


def _pg_create_statement(app_delta: bool, user_delta: bool) -> str:
    """Build the single-statement create for one combination of app/user deltas.

    Parameters: $1-$3 the key, $4 state JSON, $5 now, then the JSON of each delta present (app,
    user). A duplicate key fails the whole statement, upserts included. The final SELECT sees
    the tables as they were before the statement, so merged state comes from the upserts'
    RETURNING, and untouched state from the tables.
    """
    deltas = iter(range(6, 8))
    ctes = [
        """s AS (
  INSERT INTO sessions (app_name, user_id, id, state, seq, create_time, update_time)
  VALUES ($1, $2, $3, $4::jsonb, 0, $5::float8, $5::float8)
  RETURNING 1)"""
    ]
    app_state = "(SELECT a.state FROM app_states a WHERE a.app_name = $1)"
    user_state = "(SELECT u.state FROM user_states u WHERE u.app_name = $1 AND u.user_id = $2)"
    if app_delta:
        ctes.append(
            f"""a AS (
  INSERT INTO app_states (app_name, state, update_time)
  SELECT $1::text, ${next(deltas)}::jsonb, $5::float8 FROM s{_PG_MERGE_APP_STATE}
  RETURNING state)"""
        )
        app_state = "(SELECT state FROM a)"
    if user_delta:
        ctes.append(
            f"""u AS (
  INSERT INTO user_states (app_name, user_id, state, update_time)
  SELECT $1::text, $2::text, ${next(deltas)}::jsonb, $5::float8 FROM s{_PG_MERGE_USER_STATE}
  RETURNING state)"""
        )
        user_state = "(SELECT state FROM u)"
    return "WITH " + ",\n".join(ctes) + f"\nSELECT {app_state}, {user_state}"


_SQLITE_LOAD_ROW = sa.text(f"SELECT {_LOAD_COLUMNS} FROM sessions s WHERE {_KEY_WHERE}")

_SQLITE_EVENTS = sa.text(
    """
SELECT event_json FROM events
 WHERE app_name = :app AND user_id = :user AND session_id = :sid
   AND seq > :after AND seq <= :upto
 ORDER BY seq
 LIMIT :limit
"""
)

_SQLITE_STATE = sa.text(f"SELECT s.state FROM sessions s WHERE {_KEY_WHERE}")

_SQLITE_GUARD = " WHERE app_name = :app AND user_id = :user AND id = :sid AND seq = :expected"
_SQLITE_FENCE_GUARD = " AND fence = :fence"
_SQLITE_RETURNING = " RETURNING create_time"
_SQLITE_SET = {
    "bump": "UPDATE sessions SET seq = seq + 1, update_time = :ts",
    "patch": (
        "UPDATE sessions SET seq = seq + 1, update_time = :ts, state = json_patch(state, :delta)"
    ),
    "replace": "UPDATE sessions SET seq = seq + 1, update_time = :ts, state = :state",
}
# (how the state changes, fenced) -> the guarded UPDATE.
_SQLITE_BUMPS = {
    (kind, fenced): sa.text(
        head + _SQLITE_GUARD + (_SQLITE_FENCE_GUARD if fenced else "") + _SQLITE_RETURNING
    )
    for kind, head in _SQLITE_SET.items()
    for fenced in (False, True)
}

_SQLITE_INSERT_EVENT = sa.text(
    """
INSERT INTO events
  (app_name, user_id, session_id, seq, id, invocation_id, author, timestamp, event_json)
VALUES (:app, :user, :sid, :expected + 1, :event_id, :invocation_id, :author, :ts, :event_json)
"""
)
