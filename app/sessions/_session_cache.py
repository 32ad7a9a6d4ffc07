"""A bounded LRU of recently served sessions, so a turn reloads only what changed.

Entries hold committed data only: the session-scoped state at `last_seq` (never `temp:` or
`app:`/`user:` keys) and a contiguous run of events `base_seq+1 .. last_seq`. Events are
immutable once stored, so the list only grows at its end; readers slice it up to the
`last_seq` they saw. `state` is replaced, never mutated, so a reader's reference stays valid.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

from app.events.event import Event

CacheKey = tuple[str, str, str]
"""(app_name, user_id, session_id)"""


@dataclass
class CachedSession:
    """What the cache remembers of one session."""

    create_time: float
    """Identifies this incarnation of the session (a deleted and re-created one differs)."""

    last_seq: int
    update_time: float
    state: dict[str, Any]
    """Session-scoped state at `last_seq`; replaced on change, never mutated."""

    base_seq: int
    """`events` holds the events with seq in (base_seq, last_seq]."""

    events: list[Event]
    """Append-only; read it through `window()`."""

    def window(self, after: int, upto: int) -> list[Event]:
        """Return a new list of the events with seq in (after, upto]; needs after >= base_seq."""
        return self.events[after - self.base_seq : upto - self.base_seq]


class SessionCache:
    """An LRU map of `CachedSession`s; `max_size=0` keeps nothing."""

    def __init__(self, max_size: int) -> None:
        if max_size < 0:
            raise ValueError("cache_size must be >= 0")
        self.max_size = max_size
        self._entries: OrderedDict[CacheKey, CachedSession] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, key: CacheKey) -> CachedSession | None:
        """Return the entry and mark it most recently used."""
        entry = self._entries.get(key)
        if entry is not None:
            self._entries.move_to_end(key)
        return entry

    def put(self, key: CacheKey, entry: CachedSession) -> None:
        """Store an entry, evicting the least recently used ones beyond `max_size`."""
        if self.max_size == 0:
            return
        self._entries[key] = entry
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_size:
            self._entries.popitem(last=False)

    def discard(self, key: CacheKey) -> None:
        """Forget a session."""
        self._entries.pop(key, None)

    def clear(self) -> None:
        """Forget everything."""
        self._entries.clear()
