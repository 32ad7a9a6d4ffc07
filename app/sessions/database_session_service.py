"""DatabaseSessionService: sessions in Postgres (asyncpg) or SQLite (aiosqlite).

Behaves like `InMemorySessionService`, durably. Events are append-only rows keyed by a
per-session `seq` and stored as the JSON the API emits; `append_event` is one short write
whatever the session's length, guarded by the expected `seq` (optimistic concurrency).

A per-process LRU cache keeps the sessions served recently, so loading a session for the next
turn asks the database only for what changed since (usually: one row, no events). The schema
comes from the alembic migrations: `agent-service migrate`, or, on an empty database, this
class running them to head on first use.

One instance belongs to one event loop (its connections do).
"""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from typing import Any, ClassVar

from sqlalchemy.ext.asyncio import AsyncEngine

from app.errors import (
    AgentServiceError,
    AlreadyExistsError,
    ConfigError,
    InvalidRequestError,
    RunInProgressError,
    RunLostError,
    SessionNotFoundError,
    StaleSessionError,
)
from app.events.event import Event
from app.ids import check_session_id
from app.observability import metrics
from app.sessions import _schema
from app.sessions._closures import ClosureSql
from app.sessions._engine import open_engine, unavailable_error
from app.sessions._session_cache import CachedSession, SessionCache
from app.sessions._sql import (
    NO_LIMIT,
    LoadedSession,
    NewEvent,
    PostgresSql,
    RunEnding,
    SessionExistsError,
    SessionKey,
    SessionSql,
    Window,
)
from app.sessions.base_session_service import (
    CachedReadsSessionService,
    GetSessionConfig,
    ListSessionsResponse,
    decode_page_token,
    encode_page_token,
)
from app.sessions.fence import SessionClaim, current_claim, current_fence
from app.sessions.migration import prepare_schema
from app.sessions.session import Session
from app.sessions.state import split_state

logger = logging.getLogger(__name__)

_DEFAULT_PAGE_SIZE = 100


class DatabaseSessionService(CachedReadsSessionService):
    """Stores sessions in a SQL database through SQLAlchemy's asyncio engine.

    Args:
        db_url: `postgresql+asyncpg://...` or `sqlite+aiosqlite:///path.db`; plain
            `postgresql://`, `postgres://` and `sqlite://` are rewritten to those drivers.
            `sqlite:///:memory:` (or `sqlite://`) is a database that lives as long as this
            service. Default: a SQLite file under `./data/` (its directory is created).
        engine: use this engine instead of creating one (it is not disposed by `close()`).
        cache_size: how many sessions the per-process cache keeps (0 disables it).
        create_schema: on first use, create the schema on an empty database by running the
            migrations to head (a database at another revision is refused either way, naming
            `agent-service migrate`). False: leave the schema entirely to `agent-service migrate`.
        **engine_kwargs: passed to `create_async_engine` (e.g. `pool_size`).

    Raises:
        ConfigError: the URL is invalid or names an unsupported driver.
    """

    TABLES: ClassVar[tuple[str, ...]] = tuple(_schema.metadata.tables)
    """The tables this service reads and writes (for readiness checks)."""

    def __init__(
        self,
        db_url: str | None = None,
        *,
        engine: AsyncEngine | None = None,
        cache_size: int = 1000,
        create_schema: bool = True,
        **engine_kwargs: Any,
    ) -> None:
        if cache_size < 0:
            raise ConfigError("cache_size must be 0 (no cache) or more.")
        engine, self._owns_engine = open_engine(db_url, engine, engine_kwargs)
        self._engine = engine
        self._sql = SessionSql.for_engine(engine)
        self._closures = ClosureSql(engine)
        self._cache = SessionCache(cache_size)
        # First use checks the schema once (see `migration.prepare_schema`).
        self._schema_checked = not create_schema
        self._schema_lock = asyncio.Lock()

    @property
    def engine(self) -> AsyncEngine:
        """The engine in use (e.g. for `app.sessions.migration.is_at_head`)."""
        return self._engine

    @property
    def claims_on_append(self) -> bool:
        """Whether an append in `fenced(claim)` takes the session for the claim's run."""
        return self._sql.claims_on_append

    @property
    def write_engine(self) -> AsyncEngine:
        """A view of `engine` (same pool) whose connections run real write transactions."""
        return self._sql.tx_engine

    def database_errors(self) -> AbstractAsyncContextManager[None]:
        """Return a context that turns connection failures into DatabaseUnavailableError."""
        return self._database("runs")

    async def postgres_fetchrow(self, query: str, *args: Any) -> Any:
        """Run one statement (asyncpg `$n` parameters) on the hot-path connections; return its
        first row. Postgres only: for other packages' per-run statements (the runs layer),
        where SQLAlchemy's statement layer would cost more than the statement.

        Raises:
            DatabaseUnavailableError: the database cannot be reached.
        """
        sql = self._sql
        if not isinstance(sql, PostgresSql):
            raise TypeError("postgres_fetchrow needs a Postgres database")
        async with self._database("runs"):
            return await sql.fetchrow(query, *args)

    async def ping(self) -> None:
        """Check that the database answers.

        Raises:
            DatabaseUnavailableError: it does not.
        """
        async with self._database("ping"):
            await self._sql.ping()

    async def close(self) -> None:
        """Drop the cache and close the connections (of an engine we created)."""
        self._cache.clear()
        await self._sql.close()
        if self._owns_engine:
            await self._engine.dispose()

    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        """Create a session; see `BaseSessionService.create_session`."""
        sid = session_id.strip() if session_id and session_id.strip() else str(uuid.uuid4())
        check_session_id(sid)
        app_delta, user_delta, session_state = split_state(state or {})
        key = (app_name, user_id, sid)
        now = time.time()
        try:
            async with self._database("create_session"):
                app_state, user_state = await self._sql.create(
                    key, session_state, app_delta, user_delta, now
                )
        except SessionExistsError as exc:
            raise AlreadyExistsError(f"Session already exists: {sid}") from exc
        self._cache.put(
            key,
            CachedSession(
                create_time=now,
                last_seq=0,
                update_time=now,
                state=session_state,
                base_seq=0,
                events=[],
            ),
        )
        return _session(key, {**session_state, **app_state, **user_state}, [], now, 0)

    async def get_session_shared(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        """`get_session` with the cache's own events; see the base class. Edit none of them."""
        key = (app_name, user_id, session_id)
        entry = self._cache.get(key)
        window = _window(config, entry)
        cached_state = entry.state if entry is not None else {}
        async with self._database("get_session"):
            loaded = await self._sql.load(key, window)
        if loaded is None:
            self._cache.discard(key)
            return None
        new_events = [Event.from_stored_json(raw) for raw in loaded.event_jsons]
        state = loaded.state if loaded.state is not None else cached_state
        events = self._merge_into_cache(key, entry, window, loaded, state, new_events)
        events = _filter(events, config)
        merged = {**state, **loaded.app_state, **loaded.user_state}
        return _session(key, merged, events, loaded.update_time, loaded.seq)

    async def list_sessions(
        self,
        *,
        app_name: str,
        user_id: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> ListSessionsResponse:
        """List sessions newest update first; see `BaseSessionService.list_sessions`."""
        size = page_size or _DEFAULT_PAGE_SIZE
        if size < 0:
            raise InvalidRequestError("page_size must be positive.")
        after = decode_page_token(page_token) if page_token else None
        async with self._database("list_sessions"):
            rows = await self._sql.list_sessions(app_name, user_id, after, size + 1)
        page = rows[:size]
        sessions = [
            _session(
                (app_name, row.user_id, row.id),
                {**row.state, **(row.app_state or {}), **(row.user_state or {})},
                [],
                row.update_time,
                row.seq,
            )
            for row in page
        ]
        token = None
        if len(rows) > size:
            token = encode_page_token(page[-1].update_time, page[-1].id)
        return ListSessionsResponse(sessions=sessions, next_page_token=token)

    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        """Delete the session and its events if it exists."""
        key = (app_name, user_id, session_id)
        self._cache.discard(key)
        async with self._database("delete_session"):
            await self._sql.delete(key)
        self._cache.discard(key)  # a get_session may have re-cached it meanwhile

    async def list_events(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        after_seq: int = 0,
        limit: int | None = None,
    ) -> list[Event]:
        """Return events after a cursor; see `BaseSessionService.list_events`."""
        jsons = await self._event_jsons((app_name, user_id, session_id), after_seq, limit)
        return [Event.from_stored_json(raw) for raw in jsons]

    async def list_events_json(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        after_seq: int = 0,
        limit: int | None = None,
    ) -> list[str]:
        """Return the stored JSON of events after a cursor, as stored: nothing is parsed."""
        return await self._event_jsons((app_name, user_id, session_id), after_seq, limit)

    async def append_event(self, session: Session, event: Event) -> Event:
        """Store the event; see `BaseSessionService.append_event`."""
        if event.partial:
            return event
        run = current_claim()
        if run is not None and run.held is not None:
            await self._write_held(run)  # it comes first, as if stored when appended
        # A run whose session is still to be taken takes it with this append (see fence.py).
        claim = run if run is not None and run.pending else None
        if claim is not None and not self._sql.claims_on_append:
            raise TypeError("this session store cannot take a run's session on append")
        self._trim_temp_delta(session, event)
        delta = event.actions.state_delta
        app_delta, user_delta, session_delta = split_state(delta) if delta else ({}, {}, {})
        key = (session.app_name, session.user_id, session.id)
        previous_seq = event.seq
        # The new seq is known up front (the write succeeds only from `expected`), so the
        # stored JSON carries it and is never rewritten.
        event.seq = session.last_seq + 1
        try:
            row = NewEvent(
                key=key,
                expected_seq=session.last_seq,
                event_id=event.id,
                invocation_id=event.invocation_id,
                author=event.author,
                timestamp=event.timestamp,
                event_json=event.to_json(),
                session_delta=session_delta,
                app_delta=app_delta,
                user_delta=user_delta,
                fence=current_fence(),
                claim=claim,
            )
        except BaseException:
            event.seq = previous_seq
            raise
        if (
            run is not None
            and run.defer_author == event.author
            and not run.pending
            and self._sql.claims_on_append
            and _ends_turn(event)
        ):
            # Likely the run's last event: its end may ride on this write (`end_run`).
            run.held = _Held(session, event, row)
            self._apply_event(session, event)
            return event
        await self._store(session, event, row, previous_seq)
        self._apply_event(session, event)
        return event

    async def end_run(
        self,
        claim: SessionClaim,
        *,
        status: str,
        error_json: str | None,
        announce: tuple[str, str] | None,
        watched: bool,
    ) -> bool:
        """Store the run's held event (`SessionClaim.defer_author`) and the run's end in one
        statement; return whether the run was ended.

        Raises:
            RunLostError: the run no longer holds the session (nothing was stored).
            StaleSessionError: another writer changed the session (nothing was stored).
            DatabaseUnavailableError: the event stays held, for a later try.
        """
        held: _Held = claim.held
        ending = RunEnding(
            invocation_id=claim.invocation_id,
            status=status,
            end_time=time.time(),
            error_json=error_json,
            announce=announce,
            watched=watched,
        )
        ended = await self._store(
            held.session, held.event, held.row, None, applied=True, ending=ending
        )
        claim.held = None
        return ended

    async def _write_held(self, claim: SessionClaim) -> None:
        held: _Held = claim.held
        await self._store(held.session, held.event, held.row, None, applied=True)
        claim.held = None

    async def _store(
        self,
        session: Session,
        event: Event,
        row: NewEvent,
        previous_seq: int | None,
        *,
        applied: bool = False,
        ending: RunEnding | None = None,
    ) -> bool:
        """Write `row` (for `event`, already numbered), and with `ending` the end of its run;
        return whether it ended the run.

        A held event was `applied` to the session when appended: it keeps its seq on failure.
        """
        key = row.key
        current: tuple[int, int] | None = None
        result: tuple[float, bool] | None
        try:
            async with self._database("append_event"):
                if ending is None:
                    create_time = await self._sql.append(row)
                    result = None if create_time is None else (create_time, False)
                else:
                    result = await self._sql.append_and_end(row, ending)
                if result is None:
                    current = await self._sql.current_seq(key)
        except BaseException:
            if not applied:
                event.seq = previous_seq
            raise
        if result is None:
            if not applied:
                event.seq = previous_seq
            if current is None:
                self._cache.discard(key)
                raise SessionNotFoundError(session.id)
            if row.claim is not None:
                # Written since this run loaded it: by another run, nearly always (a run that
                # started and maybe ended meanwhile). Nothing of this run was stored.
                raise RunInProgressError(
                    f"Another run wrote to session {session.id} while this one was starting; retry."
                )
            if row.fence is not None and current[1] != row.fence:
                raise RunLostError(
                    f"This run no longer holds session {session.id}: it was sealed or taken "
                    "over by another writer."
                )
            raise StaleSessionError(
                f"Session {session.id} was modified (seq {current[0]}) since this copy was "
                f"loaded (seq {row.expected_seq}); reload it and retry."
            )
        create_time, ended = result
        session_delta = row.session_delta
        self._remember_append(key, row.expected_seq, create_time, event, session_delta)
        return ended

    async def claim_close(self, session: Session) -> int | None:
        """Advance the session's close watermark; see `BaseSessionService.claim_close`."""
        if session.last_seq < 1:
            return None
        key = (session.app_name, session.user_id, session.id)
        async with self._database("claim_close"):
            return await self._closures.claim(key, session.last_seq)

    async def release_close(self, session: Session, previous: int) -> None:
        """Undo a claim; see `BaseSessionService.release_close`."""
        key = (session.app_name, session.user_id, session.id)
        async with self._database("release_close"):
            await self._closures.release(key, session.last_seq, previous)

    async def list_unclosed_sessions(
        self, *, app_names: Sequence[str], updated_before: float, limit: int
    ) -> list[tuple[str, str, str]]:
        """Return idle sessions not closed yet; see `BaseSessionService.list_unclosed_sessions`."""
        async with self._database("list_unclosed_sessions"):
            return await self._closures.unclosed(app_names, updated_before, limit)

    async def _event_jsons(self, key: SessionKey, after_seq: int, limit: int | None) -> list[str]:
        if limit is not None and limit < 0:
            raise InvalidRequestError("limit must be 0 or more.")
        async with self._database("list_events"):
            jsons = await self._sql.list_events(
                key,
                min(max(after_seq, 0), NO_LIMIT),  # keep SQL within BIGINT
                None if limit is None else min(limit, NO_LIMIT),
            )
        if jsons is None:
            raise SessionNotFoundError(key[2])
        return jsons

    # Cache upkeep. No awaits in these methods, so each runs atomically on the event loop.

    def _merge_into_cache(
        self,
        key: SessionKey,
        entry: CachedSession | None,
        window: Window,
        loaded: LoadedSession,
        state: dict[str, Any],
        new_events: list[Event],
    ) -> list[Event]:
        """Fold a load into the cache; return the events of the window as a new list."""
        seq, create_time = loaded.seq, loaded.create_time
        lower = window.lower(seq)
        unchanged = self._cache.get(key) is entry and (
            entry is None or entry.last_seq == window.cached_seq
        )
        if entry is not None and window.uses_cache(seq, create_time):
            if unchanged:
                entry.events.extend(new_events)
                entry.last_seq = seq
                entry.update_time = loaded.update_time
                entry.state = state
                return entry.window(lower, seq)
            # Another call moved the entry on meanwhile: combine our snapshot with our rows.
            cached_seq = window.cached_seq
            older = entry.window(lower, cached_seq) if lower < cached_seq else []
            return older + new_events[max(lower - cached_seq, 0) :]
        # The events read cover (lower, seq]: they replace the entry.
        if unchanged:
            self._cache.put(
                key,
                CachedSession(
                    create_time=create_time,
                    last_seq=seq,
                    update_time=loaded.update_time,
                    state=state,
                    base_seq=lower,
                    events=new_events,
                ),
            )
        return list(new_events)

    def _remember_append(
        self,
        key: SessionKey,
        expected: int,
        create_time: float,
        event: Event,
        session_delta: dict[str, Any],
    ) -> None:
        entry = self._cache.get(key)
        if entry is None:
            return
        if entry.create_time != create_time:
            self._cache.discard(key)  # the session was re-created elsewhere
        elif entry.last_seq == expected:
            entry.events.append(event)
            entry.last_seq = expected + 1
            entry.update_time = event.timestamp
            if session_delta:
                entry.state = {**entry.state, **session_delta}
        # else: the entry is behind; the next load fetches what it misses.

    async def _check_schema(self) -> None:
        async with self._schema_lock:
            if not self._schema_checked:
                await prepare_schema(self._engine)
                self._schema_checked = True

    @asynccontextmanager
    async def _database(self, operation: str) -> AsyncIterator[None]:
        """Time the statements of `operation`; translate connection failures."""
        started = time.perf_counter()
        try:
            if not self._schema_checked:
                await self._check_schema()
            yield
        except AgentServiceError:
            raise
        except Exception as exc:
            translated = unavailable_error(exc, self._engine.url)
            if translated is None:
                raise
            metrics.database_unavailable(operation)
            raise translated from exc
        finally:
            metrics.store_call(operation, time.perf_counter() - started)


def _ends_turn(event: Event) -> bool:
    """A plain final answer: no calls, no responses (a long-running call is final too, but
    its invocation goes on with the client's answer)."""
    return (
        event.is_final_response()
        and not event.get_function_calls()
        and not event.get_function_responses()
    )


@dataclass(frozen=True)
class _Held:
    """A run's event applied to its session but not written yet (`SessionClaim.held`)."""

    session: Session
    event: Event
    row: NewEvent


def _window(config: GetSessionConfig | None, entry: CachedSession | None) -> Window:
    """Turn a GetSessionConfig and the cache entry into the events to fetch."""
    floor = 0
    recent = NO_LIMIT
    if config is not None:
        floor = min(max(config.after_seq or 0, 0), NO_LIMIT)  # keep SQL within BIGINT
        # With a timestamp filter the newest N are only known after filtering: fetch them all.
        if config.num_recent_events is not None and config.after_timestamp is None:
            recent = min(max(config.num_recent_events, 0), NO_LIMIT)
    if entry is None:
        return Window(floor=floor, recent=recent)
    return Window(
        floor=floor,
        recent=recent,
        cached_seq=entry.last_seq,
        cached_create_time=entry.create_time,
        cached_base=entry.base_seq,
    )


def _filter(events: list[Event], config: GetSessionConfig | None) -> list[Event]:
    """Apply the filters the window could not (timestamp; then the newest N)."""
    if config is None:
        return events
    if config.after_timestamp is not None:
        ts = config.after_timestamp
        events = [e for e in events if e.timestamp >= ts]
    if config.num_recent_events is not None:
        n = config.num_recent_events
        events = events[-n:] if n > 0 else []
    return events


def _session(
    key: SessionKey,
    state: dict[str, Any],
    events: list[Event],
    update_time: float,
    seq: int,
) -> Session:
    # model_construct: every value comes from our own storage, so skip re-validation (which
    # would walk every event of a long session on each turn).
    app_name, user_id, session_id = key
    return Session.model_construct(
        id=session_id,
        app_name=app_name,
        user_id=user_id,
        state=state,
        events=events,
        last_update_time=update_time,
        last_seq=seq,
    )
