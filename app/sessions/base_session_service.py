"""BaseSessionService: the contract every session store implements, and its shared logic."""

from __future__ import annotations

import abc
import base64
import json
import time
from collections.abc import Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from app.errors import InvalidRequestError
from app.events.event import Event
from app.sessions.session import Session
from app.sessions.state import State


class GetSessionConfig(BaseModel):
    """Which events `get_session` returns."""

    num_recent_events: int | None = None
    """Only the newest N events (0: none)."""

    after_timestamp: float | None = None
    """Only events at or after this time."""

    after_seq: int | None = None
    """Only events with a greater `seq` (a stream cursor)."""


class ListSessionsResponse(BaseModel):
    """A page of sessions (without events)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    sessions: list[Session] = Field(default_factory=list)
    next_page_token: str | None = None


def encode_page_token(update_time: float, session_id: str) -> str:
    """Encode a keyset position (newest-first order) as an opaque token."""
    raw = json.dumps([update_time, session_id], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_page_token(token: str) -> tuple[float, str]:
    """Decode `encode_page_token`; a malformed token is an InvalidRequestError."""
    try:
        padded = token + "=" * (-len(token) % 4)
        update_time, session_id = json.loads(base64.urlsafe_b64decode(padded))
        return float(update_time), str(session_id)
    except (ValueError, TypeError) as exc:
        raise InvalidRequestError("Invalid page token.") from exc


class BaseSessionService(abc.ABC):
    """Stores sessions and their events. Subclass it to add a backend."""

    @abc.abstractmethod
    async def create_session(
        self,
        *,
        app_name: str,
        user_id: str,
        state: dict[str, Any] | None = None,
        session_id: str | None = None,
    ) -> Session:
        """Create a session; `temp:` keys in `state` are dropped.

        Raises:
            AlreadyExistsError: `session_id` is taken for this app and user.
            InvalidRequestError: `session_id` breaks `app.ids` rules (unusable in a URL).
        """

    @abc.abstractmethod
    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        """Return the session with its (selected) events, or None when it does not exist.

        The session and its events are the caller's: editing them changes nothing stored.
        """

    async def get_session_shared(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        """`get_session` for readers that never edit the events (the Runner, the HTTP routes).

        The events may be the store's own (cached) objects: sharing them saves copying the
        whole history on every turn. Edit none of them; `get_session` returns copies.
        Stores without a cache need not override this.
        """
        return await self.get_session(
            app_name=app_name, user_id=user_id, session_id=session_id, config=config
        )

    @abc.abstractmethod
    async def list_sessions(
        self,
        *,
        app_name: str,
        user_id: str | None = None,
        page_size: int | None = None,
        page_token: str | None = None,
    ) -> ListSessionsResponse:
        """List sessions without events, most recently updated first."""

    @abc.abstractmethod
    async def delete_session(self, *, app_name: str, user_id: str, session_id: str) -> None:
        """Delete a session and its events (a no-op when it does not exist)."""

    @abc.abstractmethod
    async def list_events(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        after_seq: int = 0,
        limit: int | None = None,
    ) -> list[Event]:
        """Return stored events with `seq > after_seq`, oldest first, at most `limit`.

        The events are the caller's: editing them changes nothing stored.

        Raises:
            SessionNotFoundError: the session does not exist.
        """

    async def list_events_json(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        after_seq: int = 0,
        limit: int | None = None,
    ) -> list[str]:
        """`list_events`, as the API's JSON; stores that keep event JSON return it as stored.

        Raises:
            SessionNotFoundError: the session does not exist.
        """
        events = await self.list_events(
            app_name=app_name,
            user_id=user_id,
            session_id=session_id,
            after_seq=after_seq,
            limit=limit,
        )
        return [event.to_json() for event in events]

    @abc.abstractmethod
    async def append_event(self, session: Session, event: Event) -> Event:
        """Store a non-partial event and apply it to `session`; partial events pass through.

        The store keeps `event` itself (a copy per append would cost a tenth of a turn), so
        once appended it is read-only: to change one, edit a `detached()` copy.

        Raises:
            SessionNotFoundError: the session no longer exists.
            StaleSessionError: another writer appended since `session` was loaded.
        """

    async def close(self) -> None:  # noqa: B027 - optional hook, most backends hold nothing
        """Release connections and caches."""

    # Closing: how far each session was added to memory. Stores that do not track it report
    # every session as never closed, and memory services skip the events they already hold.

    async def claim_close(self, session: Session) -> int | None:
        """Mark `session` closed up to `session.last_seq`, atomically across processes.

        Returns the seq it was closed up to before (0: never), so the caller adds only the
        newer events to memory; None when it already was closed that far (another close won)
        or no longer exists.
        """
        return 0 if session.last_seq > 0 else None

    async def release_close(self, session: Session, previous: int) -> None:  # noqa: B027
        """Undo a `claim_close` whose memory write failed (unless another close moved on)."""

    async def list_unclosed_sessions(
        self, *, app_names: Sequence[str], updated_before: float, limit: int
    ) -> list[tuple[str, str, str]]:
        """Return (app, user, session) of sessions idle since `updated_before` with events
        no close added yet, least recently updated first."""
        return []

    # Shared logic for implementations.

    @staticmethod
    def _trim_temp_delta(session: Session, event: Event) -> None:
        """Apply `temp:` keys to the live session, then strip them from the event to store."""
        delta = event.actions.state_delta
        if not delta:
            return
        temp_keys = [k for k in delta if k.startswith(State.TEMP_PREFIX)]
        for key in temp_keys:
            session.state[key] = delta.pop(key)

    @staticmethod
    def _apply_event(session: Session, event: Event) -> None:
        """Update the in-memory session after `event` was stored."""
        if event.actions.state_delta:
            session.state.update(event.actions.state_delta)
        session.events.append(event)
        if event.seq is not None:
            session.last_seq = event.seq
        session.last_update_time = event.timestamp if event.timestamp else time.time()


class CachedReadsSessionService(BaseSessionService):
    """A store whose real read is `get_session_shared`; `get_session` copies its events."""

    async def get_session(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        """Return the session or None; see `BaseSessionService.get_session`."""
        session = await self.get_session_shared(
            app_name=app_name, user_id=user_id, session_id=session_id, config=config
        )
        if session is not None:
            session.events = [event.detached() for event in session.events]
        return session

    @abc.abstractmethod
    async def get_session_shared(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str,
        config: GetSessionConfig | None = None,
    ) -> Session | None:
        """Read the session, sharing the cache's own events; see the base class."""
