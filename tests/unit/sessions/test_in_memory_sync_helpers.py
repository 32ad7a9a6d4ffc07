"""The in-memory service's deprecated blocking helpers, as the reference runtime offers them."""

from __future__ import annotations

import logging

import pytest
from google.genai import types

from app.events import Event
from app.sessions import AlreadyExistsError, InMemorySessionService

DEPRECATION = "Deprecated. Please migrate to the async method."


def test_sync_helpers_work_without_an_event_loop(caplog: pytest.LogCaptureFixture) -> None:
    service = InMemorySessionService()
    with caplog.at_level(logging.WARNING, logger="app.sessions.in_memory_session_service"):
        created = service.create_session_sync(
            app_name="app", user_id="u", session_id="s1", state={"user:tz": "CET", "k": 1}
        )
        loaded = service.get_session_sync(app_name="app", user_id="u", session_id="s1")
        listed = service.list_sessions_sync(app_name="app", user_id="u")
        service.delete_session_sync(app_name="app", user_id="u", session_id="s1")
        gone = service.get_session_sync(app_name="app", user_id="u", session_id="s1")
    assert created.id == "s1" and created.state == {"user:tz": "CET", "k": 1}
    assert loaded is not None and loaded.state == created.state
    assert [s.id for s in listed.sessions] == ["s1"]
    assert gone is None
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings == [DEPRECATION] * 5


async def test_sync_helpers_see_what_the_async_api_stored() -> None:
    service = InMemorySessionService()
    session = await service.create_session(app_name="app", user_id="u")
    event = Event(author="user", content=types.Content(role="user", parts=[types.Part(text="hi")]))
    await service.append_event(session, event)
    loaded = service.get_session_sync(app_name="app", user_id="u", session_id=session.id)
    assert loaded is not None and [e.id for e in loaded.events] == [event.id]


def test_sync_create_keeps_the_async_errors() -> None:
    service = InMemorySessionService()
    service.create_session_sync(app_name="app", user_id="u", session_id="dup")
    with pytest.raises(AlreadyExistsError):
        service.create_session_sync(app_name="app", user_id="u", session_id="dup")
