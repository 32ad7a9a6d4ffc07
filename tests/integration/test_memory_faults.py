"""Memory search on Postgres when the server drops its connections: one failed call at most."""

from __future__ import annotations

import asyncio

import pytest
from google.genai import types

from app.errors import DatabaseUnavailableError
from app.events import Event
from app.memory import DatabaseMemoryService
from app.sessions import Session

from .helpers import terminate_other_backends

pytestmark = pytest.mark.postgres

APP, USER = "app", "u"


async def search(service: DatabaseMemoryService) -> list[str]:
    found = await service.search_memory(app_name=APP, user_id=USER, query="kites")
    return [m.id or "" for m in found.memories]


async def test_killed_connections_cost_at_most_one_failed_search(pg_db_url: str) -> None:
    service = DatabaseMemoryService(pg_db_url, pool_pre_ping=False)
    event = Event(
        author="user", content=types.Content(role="user", parts=[types.Part(text="red kites")])
    )
    try:
        await service.add_session_to_memory(
            Session(id="s", app_name=APP, user_id=USER, events=[event])
        )
        # Several pooled connections, all idle, then the server kills them.
        assert await asyncio.gather(*[search(service) for _ in range(4)]) == [[event.id]] * 4
        assert await terminate_other_backends(pg_db_url) >= 1

        failures = 0
        for _ in range(6):
            try:
                assert await search(service) == [event.id]
            except DatabaseUnavailableError:
                failures += 1
        assert failures <= 1
    finally:
        await service.close()
