"""Memory over HTTP: close a session, search, forget; on every store, across restarts."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from app.events.event import new_invocation_id
from app.runs import RunStatus
from app.server.app import MEMORY_URL

from .conftest import ClientFactory, serve_in_process
from .helpers import assert_problem, message, services_of

APP = "scripted"
BASE = f"/apps/{APP}/users"
STORES = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@pytest.fixture(params=STORES)
def store_url(request: pytest.FixtureRequest) -> str:
    """`database_url` of each store (databases fresh and migrated)."""
    if request.param == "memory":
        return MEMORY_URL
    name = "pg_db_url" if request.param == "postgres" else "sqlite_db_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture(params=STORES[1:])
def db_url(request: pytest.FixtureRequest) -> str:
    """URL of a fresh migrated database, on each database store (for restarts, replicas)."""
    name = "pg_db_url" if request.param == "postgres" else "sqlite_db_url"
    url: str = request.getfixturevalue(name)
    return url


@pytest.fixture
async def http(store_url: str) -> AsyncIterator[httpx.AsyncClient]:
    async with serve_in_process(database_url=store_url) as client:
        yield client


async def chat(client: httpx.AsyncClient, uid: str, sid: str, *texts: str) -> None:
    """Create the session if needed and run one turn per text (the model answers "ok")."""
    for text in texts:
        response = await client.post(
            f"{BASE}/{uid}/sessions/{sid}:run",
            json={"newMessage": message(text), "createSession": True},
            headers={"accept": "application/json"},
        )
        assert response.status_code == 200, response.text


async def close(client: httpx.AsyncClient, uid: str, sid: str) -> httpx.Response:
    return await client.post(f"{BASE}/{uid}/sessions/{sid}:close")


async def search(
    client: httpx.AsyncClient, uid: str, query: str, **params: Any
) -> list[dict[str, Any]]:
    response = await client.get(f"{BASE}/{uid}/memory", params={"query": query, **params})
    assert response.status_code == 200, response.text
    memories: list[dict[str, Any]] = response.json()["memories"]
    return memories


def texts(memories: list[dict[str, Any]]) -> list[str]:
    return [" ".join(p["text"] for p in m["content"]["parts"]) for m in memories]


async def test_close_then_search_finds_the_sessions_facts_for_that_user_only(
    http: httpx.AsyncClient,
) -> None:
    await chat(http, "ana", "s1", "chat my sister lives in Porto")
    await chat(http, "bob", "s1", "chat my sister lives in Oslo")
    assert await search(http, "ana", "sister") == []  # nothing is remembered before a close

    assert (await close(http, "ana", "s1")).status_code == 204

    (found,) = await search(http, "ana", "where does my sister live")
    assert texts([found]) == ["chat my sister lives in Porto"]
    assert found["author"] == "user" and found["content"]["role"] == "user"
    assert found["timestamp"].endswith("+00:00") and found["id"]
    assert await search(http, "bob", "sister") == []  # bob's session was never closed
    assert texts(await search(http, "ana", "ok")) == ["ok"]  # the model's turn too


async def test_closing_twice_stores_once_and_later_turns_are_added(
    http: httpx.AsyncClient,
) -> None:
    await chat(http, "ana", "s1", "chat I play the cello")
    assert (await close(http, "ana", "s1")).status_code == 204
    assert (await close(http, "ana", "s1")).status_code == 204
    assert texts(await search(http, "ana", "cello")) == ["chat I play the cello"]

    await chat(http, "ana", "s1", "chat and the cello is old")
    assert (await close(http, "ana", "s1")).status_code == 204
    assert sorted(texts(await search(http, "ana", "cello"))) == [
        "chat I play the cello",
        "chat and the cello is old",
    ]


async def test_forgetting_a_session_or_a_user_removes_their_memories(
    http: httpx.AsyncClient,
) -> None:
    await chat(http, "ana", "s1", "chat alpha secret")
    await chat(http, "ana", "s2", "chat beta secret")
    await chat(http, "bob", "s1", "chat gamma secret")
    for uid, sid in (("ana", "s1"), ("ana", "s2"), ("bob", "s1")):
        assert (await close(http, uid, sid)).status_code == 204

    response = await http.delete(f"{BASE}/ana/sessions/s1/memory")
    assert response.status_code == 204
    assert texts(await search(http, "ana", "secret")) == ["chat beta secret"]

    assert (await http.delete(f"{BASE}/ana/memory")).status_code == 204
    assert await search(http, "ana", "secret") == []
    assert texts(await search(http, "bob", "secret")) == ["chat gamma secret"]
    assert (await http.delete(f"{BASE}/ana/memory")).status_code == 204  # idempotent

    # The session itself is untouched, and closing it again brings nothing back.
    assert (await http.get(f"{BASE}/ana/sessions/s1")).status_code == 200
    assert (await close(http, "ana", "s1")).status_code == 204
    assert await search(http, "ana", "secret") == []


async def test_limit_caps_the_results(http: httpx.AsyncClient) -> None:
    await chat(http, "ana", "s1", "chat apples one", "chat apples two", "chat apples three")
    await close(http, "ana", "s1")

    assert len(await search(http, "ana", "apples")) == 3
    assert len(await search(http, "ana", "apples", limit=2)) == 2


async def test_close_of_a_busy_session_is_409(http: httpx.AsyncClient) -> None:
    await chat(http, "ana", "s1", "chat hello")
    runs = services_of(http).runs
    active = await runs.begin((APP, "ana", "s1"), new_invocation_id())  # a run holds it
    try:
        assert_problem(await close(http, "ana", "s1"), 409, "run_in_progress")
    finally:
        await runs.finish(active, RunStatus.COMPLETED)
    assert (await close(http, "ana", "s1")).status_code == 204


async def test_memory_survives_a_restart_and_is_shared_by_two_processes(
    db_url: str,
) -> None:
    async with serve_in_process(database_url=db_url) as first:
        await chat(first, "ana", "s1", "chat my bike is red")
        async with serve_in_process(database_url=db_url) as second:
            assert (await close(second, "ana", "s1")).status_code == 204
            assert texts(await search(first, "ana", "bike")) == ["chat my bike is red"]
            assert (await close(first, "ana", "s1")).status_code == 204  # already closed
    async with serve_in_process(database_url=db_url) as restarted:
        assert texts(await search(restarted, "ana", "bike")) == ["chat my bike is red"]
        assert (await restarted.delete(f"{BASE}/ana/memory")).status_code == 204
        assert await search(restarted, "ana", "bike") == []


async def test_bad_input_on_memory_routes_is_problem_json(http: httpx.AsyncClient) -> None:
    memory = f"{BASE}/ana/memory"
    assert_problem(await http.get(memory), 422, "invalid_request")  # no query
    for params in (
        {"query": ""},
        {"query": "x" * 1001},
        {"query": "x", "limit": "0"},
        {"query": "x", "limit": "101"},
        {"query": "x", "limit": "many"},
    ):
        assert_problem(await http.get(memory, params=params), 422, "invalid_request")
    assert_problem(await http.get(memory + "x", params={"query": "x"}), 404, "not_found")
    assert_problem(await http.get(f"{BASE}/{'u' * 129}/memory?query=x"), 422, "invalid_request")
    assert_problem(await http.get(f"{BASE}/a%00b/memory?query=x"), 422, "invalid_request")
    assert_problem(
        await http.get("/apps/nope/users/ana/memory", params={"query": "x"}), 404, "app_not_found"
    )
    assert_problem(await http.delete("/apps/nope/users/ana/memory"), 404, "app_not_found")
    assert_problem(
        await http.delete("/apps/nope/users/ana/sessions/s1/memory"), 404, "app_not_found"
    )
    assert_problem(await http.put(memory), 405, "method_not_allowed")
    # Query syntax of either search engine is plain text here.
    for query in ('"', "NEAR(a b)", "a* OR -b", "'; DROP TABLE memory_entries; --"):
        assert await search(http, "ana", query) == []
    assert_problem(await http.get(memory, params={"query": "a\x00b"}), 422, "invalid_request")


async def test_bad_input_on_close_is_problem_json(http: httpx.AsyncClient) -> None:
    assert_problem(await close(http, "ana", "missing"), 404, "session_not_found")
    assert_problem(await http.post("/apps/nope/users/ana/sessions/s1:close"), 404, "app_not_found")
    assert_problem(await close(http, "ana", "s" * 129), 422, "invalid_request")
    assert_problem(await http.post(f"{BASE}/ana/sessions/a%01b:close"), 422, "invalid_request")
    assert_problem(await http.get(f"{BASE}/ana/sessions/s1:close"), 404, "session_not_found")


@pytest.mark.postgres
async def test_memory_language_is_checked_at_start(
    make_client: ClientFactory, pg_db_url: str
) -> None:
    from app.errors import ConfigError

    with pytest.raises(ConfigError, match="AGENT_SERVICE_MEMORY_LANGUAGE"):
        async with make_client(database_url=pg_db_url, memory_language="klingon"):
            pass
    async with make_client(database_url=pg_db_url, memory_language="simple") as client:
        await chat(client, "ana", "s1", "chat the cats sleep")
        await close(client, "ana", "s1")
        # `simple` does not stem: "cat" is not "cats".
        assert await search(client, "ana", "cat") == []
        assert texts(await search(client, "ana", "cats")) == ["chat the cats sleep"]
