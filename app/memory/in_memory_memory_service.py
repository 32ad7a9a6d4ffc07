"""InMemoryMemoryService: word-match search over remembered session events."""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass
from datetime import UTC, datetime

from app.memory._remembered import remembered
from app.memory.base_memory_service import (
    DEFAULT_SEARCH_LIMIT,
    BaseMemoryService,
    MemoryEntry,
    SearchMemoryResponse,
)
from app.sessions.session import Session

_WORD = re.compile(r"[\w']+", re.UNICODE)


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


@dataclass(frozen=True)
class _Stored:
    entry: MemoryEntry
    timestamp: float
    words: set[str]


class InMemoryMemoryService(BaseMemoryService):
    """Scores each remembered event by how many query words it contains (one process only)."""

    def __init__(self) -> None:
        # (app, user) -> session id -> event id -> what was remembered of that event.
        self._sessions: dict[tuple[str, str], dict[str, dict[str, _Stored]]] = {}
        self._lock = threading.Lock()

    async def add_session_to_memory(self, session: Session) -> None:
        """Remember the session's text events; events already remembered are kept as they are."""
        found: dict[str, _Stored] = {}
        for event in session.events:
            kept = remembered(event)
            if kept is None:
                continue
            entry = MemoryEntry(
                content=kept.content,
                author=event.author,
                timestamp=datetime.fromtimestamp(event.timestamp, tz=UTC).isoformat(),
                id=event.id,
            )
            found[event.id] = _Stored(entry, event.timestamp, _words(kept.text))
        if not found:
            return
        with self._lock:
            user = self._sessions.setdefault((session.app_name, session.user_id), {})
            stored = user.setdefault(session.id, {})
            for event_id, item in found.items():
                stored.setdefault(event_id, item)

    async def search_memory(
        self, *, app_name: str, user_id: str, query: str, limit: int = DEFAULT_SEARCH_LIMIT
    ) -> SearchMemoryResponse:
        """Return events sharing words with `query`, most shared words first, then newest."""
        wanted = _words(query)
        if not wanted or limit < 1:
            return SearchMemoryResponse()
        with self._lock:
            user = self._sessions.get((app_name, user_id), {})
            sessions = [list(events.values()) for events in user.values()]
        scored: list[tuple[int, float, MemoryEntry]] = []
        for items in sessions:
            for item in items:
                score = len(wanted & item.words)
                if score:
                    scored.append((score, item.timestamp, item.entry))
        scored.sort(key=lambda s: (s[0], s[1]), reverse=True)
        return SearchMemoryResponse(
            memories=[entry.model_copy(deep=True) for _, _, entry in scored[:limit]]
        )

    async def delete_memory(
        self, *, app_name: str, user_id: str, session_id: str | None = None
    ) -> int:
        """Forget the user's memories (of one session, when given); return how many."""
        with self._lock:
            user = self._sessions.get((app_name, user_id))
            if user is None:
                return 0
            if session_id is None:
                removed = sum(len(s) for s in user.values())
                del self._sessions[(app_name, user_id)]
                return removed
            return len(user.pop(session_id, {}))
