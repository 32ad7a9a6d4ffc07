"""State: a session's key/value state as seen by callbacks and tools, with a pending delta."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any


class State:
    """A merged view of stored state plus a delta that the next event will carry.

    Keys prefixed `app:` are shared by every user of the app, `user:` by one user's sessions,
    `temp:` live only for the current invocation; other keys belong to the session.
    """

    APP_PREFIX = "app:"
    USER_PREFIX = "user:"
    TEMP_PREFIX = "temp:"

    def __init__(self, value: dict[str, Any], delta: dict[str, Any]) -> None:
        self._value = value
        self._delta = delta

    def __getitem__(self, key: str) -> Any:
        if key in self._delta:
            return self._delta[key]
        return self._value[key]

    def __setitem__(self, key: str, value: Any) -> None:
        # Written to both: reads in this invocation see it, and the delta is persisted with
        # the next event.
        self._value[key] = value
        self._delta[key] = value

    def __contains__(self, key: object) -> bool:
        return key in self._delta or key in self._value

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_dict())

    def __len__(self) -> int:
        return len(self.to_dict())

    def __repr__(self) -> str:
        return f"State({self.to_dict()!r})"

    def get(self, key: str, default: Any = None) -> Any:
        """Return the value for `key`, or `default`."""
        return self[key] if key in self else default  # noqa: SIM401 - State is no dict

    def setdefault(self, key: str, default: Any = None) -> Any:
        """Return the value for `key`, setting it to `default` first when absent."""
        if key not in self:
            self[key] = default
        return self[key]

    def update(self, delta: Mapping[str, Any]) -> None:
        """Set several keys at once."""
        for key, value in delta.items():
            self[key] = value

    def has_delta(self) -> bool:
        """Return True when keys were set since the delta was last taken."""
        return bool(self._delta)

    def to_dict(self) -> dict[str, Any]:
        """Return a plain dict of the merged state."""
        return {**self._value, **self._delta}


def split_state(state: Mapping[str, Any]) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Split a merged state into (app, user, session) parts; prefixes are kept, temp: dropped."""
    app: dict[str, Any] = {}
    user: dict[str, Any] = {}
    session: dict[str, Any] = {}
    for key, value in state.items():
        if key.startswith(State.APP_PREFIX):
            app[key] = value
        elif key.startswith(State.USER_PREFIX):
            user[key] = value
        elif not key.startswith(State.TEMP_PREFIX):
            session[key] = value
    return app, user, session
