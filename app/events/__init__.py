"""Events: the entries of a session's history and the actions they carry."""

from __future__ import annotations

from app.events.event import Event, new_event_id, new_invocation_id
from app.events.event_actions import EventActions, EventCompaction
from app.events.llm_response import LlmResponse

__all__ = [
    "Event",
    "EventActions",
    "EventCompaction",
    "LlmResponse",
    "new_event_id",
    "new_invocation_id",
]
