"""Closing idle sessions in the background: once across replicas, never a busy session."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from app.events import Event
from app.events.event import new_invocation_id
from app.runs import RunStatus
from app.server.idle_sessions import IdleSessionCloser
from app.sessions import Session

from .conftest import serve_in_process
from .helpers import message, services_of

APP = "scripted"
BASE = f"/apps/{APP}/users"
STORES = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest) -> str:
    if request.param == "memory":
        return "memory://"
    name = "pg_db_url" if request.param == "postgres" else "sqlite_db_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture(params=STORES[1:])
def db_url(request: pytest.FixtureRequest) -> str:
    name = "pg_db_url" if request.param == "postgres" else "sqlite_db_url"
    url: str = request.getfixturevalue(name)
    return url


async def chat(client: httpx.AsyncClient, uid: str, sid: str, text: str) -> None:
    response = await client.post(
        f"{BASE}/{uid}/sessions/{sid}:run",
        json={"newMessage": message(text), "createSession": True},
        headers={"accept": "application/json"},
    )
    assert response.status_code == 200, response.text


async def remembered(client: httpx.AsyncClient, uid: str, query: str) -> list[str]:
    response = await client.get(f"{BASE}/{uid}/memory", params={"query": query})
    assert response.status_code == 200, response.text
    memories: list[dict[str, Any]] = response.json()["memories"]
    return sorted(" ".join(p["text"] for p in m["content"]["parts"]) for m in memories)


def closer_of(client: httpx.AsyncClient, idle_after: float = 1e-6) -> IdleSessionCloser:
    services = services_of(client)
    return IdleSessionCloser(
        services.runners, services.sessions, services.runs, idle_after=idle_after
    )


async def test_two_replicas_close_each_idle_session_once(db_url: str) -> None:
    async with (
        serve_in_process(database_url=db_url) as first,
        serve_in_process(database_url=db_url) as second,
    ):
        for i in range(12):
            await chat(first, f"u{i % 3}", f"s{i}", f"chat fact number {i} about owls")

        closed = await asyncio.gather(closer_of(first).sweep(), closer_of(second).sweep())

        assert sum(closed) == 12
        assert await remembered(first, "u0", "owls") == [
            *sorted(f"chat fact number {i} about owls" for i in range(0, 12, 3))
        ]
        # Nothing is left to close until a session changes again.
        assert await closer_of(second).sweep() == 0
        await chat(second, "u0", "s0", "chat owls again")
        assert await closer_of(first).sweep() == 1


async def test_recent_and_busy_sessions_are_left_open(store_url: str) -> None:
    async with serve_in_process(database_url=store_url) as client:
        await chat(client, "u", "busy", "chat busy owls")
        await chat(client, "u", "fresh", "chat fresh owls")
        assert await closer_of(client, idle_after=3600).sweep() == 0

        runs = services_of(client).runs
        active = await runs.begin((APP, "u", "busy"), new_invocation_id())  # a run holds it
        try:
            assert await closer_of(client).sweep() == 1
        finally:
            await runs.finish(active, RunStatus.COMPLETED)
        assert await remembered(client, "u", "owls") == ["chat fresh owls"]
        assert await closer_of(client).sweep() == 1
        assert await remembered(client, "u", "owls") == ["chat busy owls", "chat fresh owls"]


async def test_sessions_of_apps_not_served_here_are_left_alone(store_url: str) -> None:
    async with serve_in_process(database_url=store_url) as client:
        sessions = services_of(client).sessions
        other = await sessions.create_session(app_name="elsewhere", user_id="u", session_id="s")
        await sessions.append_event(other, Event(author="user", invocation_id="e-1"))
        assert await closer_of(client).sweep() == 0


async def test_the_server_closes_idle_sessions_when_configured(store_url: str) -> None:
    async with serve_in_process(database_url=store_url, close_idle_sessions_after=0.01) as client:
        closer = services_of(client).idle_closer
        assert closer is not None
        await chat(client, "u", "s", "chat the owl is called Hedwig")
        async with asyncio.timeout(10):
            while not await remembered(client, "u", "owl"):
                closer.swept.clear()
                await closer.swept.wait()
        assert await remembered(client, "u", "owl") == ["chat the owl is called Hedwig"]


async def test_idle_sessions_are_not_closed_by_default(store_url: str) -> None:
    async with serve_in_process(database_url=store_url) as client:
        assert services_of(client).idle_closer is None


async def test_a_session_that_fails_to_close_does_not_hold_up_the_others(
    store_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    async with serve_in_process(database_url=store_url) as client:
        await chat(client, "u", "broken", "chat first owls")
        await chat(client, "u", "fine", "chat second owls")
        services = services_of(client)
        runner = services.runners.runner(APP)
        close_session = runner.close_session

        async def failing_for_broken(session: Session) -> bool:
            if session.id == "broken":
                raise RuntimeError("memory write failed")
            return await close_session(session)

        runner.close_session = failing_for_broken  # type: ignore[method-assign]
        assert await closer_of(client).sweep() == 1
        assert await remembered(client, "u", "owls") == ["chat second owls"]
        assert "closing idle session failed" in caplog.text and "broken" in caplog.text
        runner.close_session = close_session  # type: ignore[method-assign]
        assert await closer_of(client).sweep() == 1
        assert await remembered(client, "u", "owls") == ["chat first owls", "chat second owls"]
