"""Session: one conversation, its merged state and its events."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from app.events.event import Event


class Session(BaseModel):
    """A conversation between one user and one app."""

    model_config = ConfigDict(
        alias_generator=to_camel, populate_by_name=True, extra="forbid", validate_assignment=False
    )

    id: str
    """Session id, unique per (app, user)."""

    app_name: str
    """The app the session belongs to."""

    user_id: str
    """The user the session belongs to."""

    state: dict[str, Any] = Field(default_factory=dict)
    """Merged state: session keys plus the app's `app:` and the user's `user:` keys."""

    events: list[Event] = Field(default_factory=list)
    """Stored events, oldest first (possibly only the most recent ones, when asked)."""

    last_update_time: float = 0.0
    """Seconds since the epoch of the last change."""

    last_seq: int = 0
    """`seq` of the newest stored event; the optimistic-concurrency token for appends."""
