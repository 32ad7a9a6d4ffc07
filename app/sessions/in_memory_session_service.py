"""InMemorySessionService: sessions in a dict, for tests, scripts and single-process demos."""

from __future__ import annotations

import logging
import threading
import time
import uuid
from collections.abc import Coroutine, Sequence
from dataclasses import dataclass, field
from typing import Any, TypeVar

from app.errors import AlreadyExistsError, SessionNotFoundError, StaleSessionError
from app.events.event import Event
from app.ids import check_session_id
from app.sessions.base_session_service import (
    CachedReadsSessionService,
    GetSessionConfig,
    ListSessionsResponse,
    decode_page_token,
    encode_page_token,
)
from app.sessions.session import Session
from app.sessions.state import split_state

logger = logging.getLogger(__name__)

_DEFAULT_PAGE_SIZE = 100
_DEPRECATED_SYNC = "Deprecated. Please migrate to the async method."

_T = TypeVar("_T")


def _complete(coro: Coroutine[Any, Any, _T]) -> _T:
    """Run a coroutine that never suspends (this service's methods) without an event loop."""
    try:
        coro.send(None)
    except StopIteration as done:
        return done.value
    coro.close()
    raise RuntimeError("an in-memory session method suspended; call the async method instead")


@dataclass
class _Stored:
    """What the service keeps for one session; events are never mutated once stored."""

    state: dict[str, Any]
    events: list[Event] = field(default_factory=list)
    last_seq: int = 0
    update_time: float = field(default_factory=time.time)
    closed_seq: int = 0
    """Events up to this seq were added to memory by a close."""


class InMemorySessionService(CachedReadsSessionService):
    """Keeps everything in process memory; lost on restart. Thread-safe."""

    def __init__(self) -> None:
        self._sessions: dict[tuple[str, str, str], _Stored] = {}
        self._app_states: dict[str, dict[str, Any]] = {}
        self._user_states: dict[tuple[str, str], dict[str, Any]] = {}
        # run() drives the service from background threads, so mutations take this lock.
        self._lock = threading.Lock()

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
        with self._lock:
            key = (app_name, user_id, sid)
            if key in self._sessions:
                raise AlreadyExistsError(f"Session already exists: {sid}")
            self._app_states.setdefault(app_name, {}).update(app_delta)
            self._user_states.setdefault((app_name, user_id), {}).update(user_delta)
            stored = _Stored(state=session_state)
            self._sessions[key] = stored
            return self._view(app_name, user_id, sid, stored, [])

    async def get_session_shared(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        """`get_session` with the stored events themselves; see the base class. Edit none."""
        with self._lock:
            stored = self._sessions.get((app_name, user_id, session_id))
            if stored is None:
                return None
            events = _select(stored.events, config)
            return self._view(app_name, user_id, session_id, stored, events)

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
        after = decode_page_token(page_token) if page_token else None
        with self._lock:
            rows = [
                (stored.update_time, sid, uid, stored)
                for (app, uid, sid), stored in self._sessions.items()
                if app == app_name and (user_id is None or uid == user_id)
            ]
            # Newest first, ties broken by id descending: the same order as the database.
            rows.sort(key=lambda r: (r[0], r[1]), reverse=True)
            if after is not None:
                rows = [r for r in rows if (r[0], r[1]) < after]
            page = rows[:size]
            sessions = [self._view(app_name, uid, sid, stored, []) for _, sid, uid, stored in page]
        token = None
        if len(rows) > size:
            last = page[-1]
            token = encode_page_token(last[0], last[1])
        return ListSessionsResponse(sessions=sessions, next_page_token=token)

    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        """Delete the session if it exists."""
        with self._lock:
            self._sessions.pop((app_name, user_id, session_id), None)

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
        with self._lock:
            stored = self._sessions.get((app_name, user_id, session_id))
            if stored is None:
                raise SessionNotFoundError(session_id)
            # seq is dense from 1, so the cursor is an index.
            start = max(after_seq, 0)
            end = None if limit is None else start + limit
            return [event.detached() for event in stored.events[start:end]]

    async def append_event(self, session: Session, event: Event) -> Event:
        """Store the event; see `BaseSessionService.append_event`."""
        if event.partial:
            return event
        self._trim_temp_delta(session, event)
        with self._lock:
            stored = self._sessions.get((session.app_name, session.user_id, session.id))
            if stored is None:
                raise SessionNotFoundError(session.id)
            if stored.last_seq != session.last_seq:
                raise StaleSessionError(
                    f"Session {session.id} was modified (seq {stored.last_seq}) since this copy "
                    f"was loaded (seq {session.last_seq}); reload it and retry."
                )
            delta = event.actions.state_delta
            if delta:
                app_delta, user_delta, session_delta = split_state(delta)
                if app_delta:
                    self._app_states.setdefault(session.app_name, {}).update(app_delta)
                if user_delta:
                    key = (session.app_name, session.user_id)
                    self._user_states.setdefault(key, {}).update(user_delta)
                stored.state.update(session_delta)
            stored.last_seq += 1
            event.seq = stored.last_seq
            stored.events.append(event)
            stored.update_time = event.timestamp
        self._apply_event(session, event)
        return event

    async def claim_close(self, session: Session) -> int | None:
        """Advance the session's close watermark; see `BaseSessionService.claim_close`."""
        with self._lock:
            stored = self._sessions.get((session.app_name, session.user_id, session.id))
            if stored is None or stored.closed_seq >= session.last_seq:
                return None
            previous, stored.closed_seq = stored.closed_seq, session.last_seq
            return previous

    async def release_close(self, session: Session, previous: int) -> None:
        """Undo a claim; see `BaseSessionService.release_close`."""
        with self._lock:
            stored = self._sessions.get((session.app_name, session.user_id, session.id))
            if stored is not None and stored.closed_seq == session.last_seq:
                stored.closed_seq = previous

    async def list_unclosed_sessions(
        self, *, app_names: Sequence[str], updated_before: float, limit: int
    ) -> list[tuple[str, str, str]]:
        """Return idle sessions not closed yet; see `BaseSessionService.list_unclosed_sessions`."""
        apps = set(app_names)
        with self._lock:
            found = [
                (stored.update_time, key)
                for key, stored in self._sessions.items()
                if key[0] in apps
                and stored.update_time < updated_before
                and stored.last_seq > stored.closed_seq
            ]
        found.sort()
        return [key for _, key in found[: max(limit, 0)]]

    def create_session_sync(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        """Deprecated blocking form of `create_session`."""
        logger.warning(_DEPRECATED_SYNC)
        return _complete(
            self.create_session(
                app_name=app_name, user_id=user_id, state=state, session_id=session_id
            )
        )

    def get_session_sync(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        """Deprecated blocking form of `get_session`."""
        logger.warning(_DEPRECATED_SYNC)
        return _complete(
            self.get_session(
                app_name=app_name, user_id=user_id, session_id=session_id, config=config
            )
        )

    def list_sessions_sync(
        self, *, app_name: str, user_id: str | None = None
    ) -> ListSessionsResponse:
        """Deprecated blocking form of `list_sessions`."""
        logger.warning(_DEPRECATED_SYNC)
        return _complete(self.list_sessions(app_name=app_name, user_id=user_id))

    def delete_session_sync(self, *, app_name: str, user_id: str, session_id: str) -> None:
        """Deprecated blocking form of `delete_session`."""
        logger.warning(_DEPRECATED_SYNC)
        _complete(self.delete_session(app_name=app_name, user_id=user_id, session_id=session_id))

    def _view(
        self, app_name: str, user_id: str, sid: str, stored: _Stored, events: list[Event]
    ) -> Session:
        state = {
            **stored.state,
            **self._app_states.get(app_name, {}),
            **self._user_states.get((app_name, user_id), {}),
        }
        return Session(
            id=sid,
            app_name=app_name,
            user_id=user_id,
            state=state,
            events=events,
            last_update_time=stored.update_time,
            last_seq=stored.last_seq,
        )


def _select(events: list[Event], config: GetSessionConfig | None) -> list[Event]:
    """Apply GetSessionConfig to a stored event list (returns a new list)."""
    if config is None:
        return list(events)
    selected = events
    if config.after_seq is not None:
        selected = selected[max(config.after_seq, 0) :]
    if config.after_timestamp is not None:
        ts = config.after_timestamp
        selected = [e for e in selected if e.timestamp >= ts]
    if config.num_recent_events is not None:
        n = config.num_recent_events
        selected = selected[-n:] if n > 0 else []
    return list(selected)
