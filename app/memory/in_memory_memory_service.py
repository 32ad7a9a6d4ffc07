"""InMemoryMemoryService: word-match search over remembered session events."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime

from app.events.event import Event
from app.memory.base_memory_service import BaseMemoryService, MemoryEntry, SearchMemoryResponse
from app.sessions.session import Session

_WORD = re.compile(r"[\w']+", re.UNICODE)
_MAX_RESULTS = 20


def _words(text: str) -> set[str]:
    return {w.lower() for w in _WORD.findall(text)}


class InMemoryMemoryService(BaseMemoryService):
    """Scores each remembered event by how many query words it contains."""

    def __init__(self) -> None:
        # (app, user) -> session id -> events with text; re-adding a session replaces it.
        self._sessions: dict[tuple[str, str], dict[str, list[tuple[Event, set[str]]]]] = {}
        self._lock = threading.Lock()

    async def add_session_to_memory(self, session: Session) -> None:
        """Index the session's text events (replacing an earlier copy of the same session)."""
        indexed = [(e, _words(e.text())) for e in session.events if e.content and e.text()]
        with self._lock:
            self._sessions.setdefault((session.app_name, session.user_id), {})[session.id] = indexed

    async def search_memory(
        self, *, app_name: str, user_id: str, query: str
    ) -> SearchMemoryResponse:
        """Return events sharing words with `query`, most shared words first."""
        wanted = _words(query)
        if not wanted:
            return SearchMemoryResponse()
        with self._lock:
            sessions = list(self._sessions.get((app_name, user_id), {}).values())
        scored: list[tuple[int, float, Event]] = []
        for events in sessions:
            for event, words in events:
                score = len(wanted & words)
                if score:
                    scored.append((score, event.timestamp, event))
        scored.sort(key=lambda s: (s[0], s[1]), reverse=True)
        return SearchMemoryResponse(
            memories=[
                MemoryEntry(
                    content=event.content,
                    author=event.author,
                    timestamp=datetime.fromtimestamp(event.timestamp, tz=UTC).isoformat(),
                    id=event.id,
                )
                for _, _, event in scored[:_MAX_RESULTS]
                if event.content is not None
            ]
        )
