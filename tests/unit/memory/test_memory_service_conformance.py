"""One suite for every memory service: in memory, SQLite and Postgres behave alike.

The database backends also prove what memory cannot: memories survive a new service on the
same database (a restart, another replica), and adding a session twice stores each event once.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic import command
from google.genai import types
from sqlalchemy import pool

from app.errors import ConfigError, DatabaseUnavailableError
from app.events import Event
from app.memory import (
    BaseMemoryService,
    DatabaseMemoryService,
    InMemoryMemoryService,
    SearchMemoryResponse,
)
from app.memory.database_memory_service import POSTGRES_SEARCH, query_words
from app.sessions import Session
from app.sessions._engine import create_engine, transaction_engine
from app.sessions.migration import alembic_config, upgrade

APP, USER = "app", "u1"
BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


def db_fixture(backend: str) -> str:
    return "pg_db_url" if backend == "postgres" else "sqlite_db_url"


@pytest.fixture(params=BACKENDS[1:])
def db_url(request: pytest.FixtureRequest) -> str:
    """URL of a fresh migrated database, on each database backend."""
    url: str = request.getfixturevalue(db_fixture(request.param))
    return url


@pytest.fixture(params=BACKENDS)
async def memory(request: pytest.FixtureRequest) -> AsyncIterator[BaseMemoryService]:
    """A memory service on each backend (databases fresh and migrated)."""
    service: BaseMemoryService
    if request.param == "memory":
        service = InMemoryMemoryService()
    else:
        service = DatabaseMemoryService(request.getfixturevalue(db_fixture(request.param)))
    try:
        yield service
    finally:
        await service.close()


def said(author: str, text: str, timestamp: float = 1_700_000_000.0) -> Event:
    role = "user" if author == "user" else "model"
    return Event(
        author=author,
        timestamp=timestamp,
        content=types.Content(role=role, parts=[types.Part(text=text)]),
    )


def session(*events: Event, sid: str = "s1", app: str = APP, user: str = USER) -> Session:
    return Session(id=sid, app_name=app, user_id=user, events=list(events))


def texts(response: SearchMemoryResponse) -> list[str]:
    return [" ".join(p.text or "" for p in m.content.parts or []) for m in response.memories]


async def search(
    memory: BaseMemoryService, query: str, *, user: str = USER, app: str = APP, limit: int = 20
) -> list[str]:
    return texts(await memory.search_memory(app_name=app, user_id=user, query=query, limit=limit))


async def test_search_finds_the_users_facts_and_ranks_the_best_match_first(
    memory: BaseMemoryService,
) -> None:
    await memory.add_session_to_memory(
        session(
            said("user", "I like green tea", timestamp=3.0),
            said("user", "My favourite drink is green tea from Kyoto", timestamp=1.0),
            said("assistant", "Noted: you live in Lisbon", timestamp=2.0),
            said("user", "The weather is nice", timestamp=4.0),
        )
    )

    found = await search(memory, "Kyoto green tea")

    assert found[:2] == ["My favourite drink is green tea from Kyoto", "I like green tea"]
    assert "The weather is nice" not in found
    assert (await search(memory, "where do you live?"))[0] == "Noted: you live in Lisbon"


async def test_search_is_scoped_to_app_and_user(memory: BaseMemoryService) -> None:
    await memory.add_session_to_memory(session(said("user", "secret alpha"), user="u1"))
    await memory.add_session_to_memory(session(said("user", "secret beta"), user="u2"))
    await memory.add_session_to_memory(session(said("user", "secret gamma"), app="other"))

    assert await search(memory, "secret") == ["secret alpha"]
    assert await search(memory, "secret", user="u2") == ["secret beta"]
    assert await search(memory, "secret", app="other") == ["secret gamma"]
    assert await search(memory, "secret", user="u3") == []


async def test_entries_carry_author_time_and_event_id(memory: BaseMemoryService) -> None:
    event = said("assistant", "The door code is 1234", timestamp=86_400.5)
    await memory.add_session_to_memory(session(event))

    (entry,) = (await memory.search_memory(app_name=APP, user_id=USER, query="code")).memories

    assert entry.author == "assistant"
    assert entry.id == event.id
    assert entry.timestamp == "1970-01-02T00:00:00.500000+00:00"
    assert entry.content == types.Content(role="model", parts=[types.Part(text=event.text())])


async def test_adding_a_session_twice_stores_each_event_once(memory: BaseMemoryService) -> None:
    first = said("user", "planning a trip to Rome")
    await memory.add_session_to_memory(session(first))
    await memory.add_session_to_memory(session(first, said("user", "the trip is to Lisbon")))
    await memory.add_session_to_memory(session(first))

    assert sorted(await search(memory, "trip")) == [
        "planning a trip to Rome",
        "the trip is to Lisbon",
    ]


async def test_only_text_and_finished_transcriptions_are_remembered(
    memory: BaseMemoryService,
) -> None:
    call = Event(
        author="assistant",
        content=types.Content(
            role="model",
            parts=[types.Part(function_call=types.FunctionCall(name="lookup", args={"q": "x"}))],
        ),
    )
    thought = Event(
        author="assistant",
        content=types.Content(role="model", parts=[types.Part(text="lookup hidden", thought=True)]),
    )
    heard = Event(
        author="user",
        input_transcription=types.Transcription(text="please lookup the zebra", finished=True),
    )
    spoke = Event(
        author="assistant",
        output_transcription=types.Transcription(text="zebras are striped", finished=True),
    )
    unfinished = Event(
        author="user", input_transcription=types.Transcription(text="zebra half", finished=False)
    )
    await memory.add_session_to_memory(
        session(call, thought, heard, spoke, unfinished, Event(author="assistant"))
    )

    assert await search(memory, "lookup") == ["please lookup the zebra"]
    assert await search(memory, "half") == []
    (spoken,) = (await memory.search_memory(app_name=APP, user_id=USER, query="striped")).memories
    assert (spoken.author, spoken.content.role) == ("assistant", "model")
    (asked,) = (await memory.search_memory(app_name=APP, user_id=USER, query="please")).memories
    assert (asked.author, asked.content.role) == ("user", "user")


async def test_limit_caps_the_results(memory: BaseMemoryService) -> None:
    await memory.add_session_to_memory(
        session(*[said("user", f"note number {i} about apples", timestamp=i) for i in range(5)])
    )

    assert len(await search(memory, "apples", limit=2)) == 2
    assert await search(memory, "apples", limit=0) == []


@pytest.mark.parametrize(
    "query",
    [
        "",
        "   ",
        "?!",
        '"',
        "NEAR(a b)",
        "a* OR -b",
        "title:x",
        "'; DROP TABLE memory_entries; --",
        "the of and",  # only stop words: Postgres makes an empty query of them
        "or OR",
    ],
)
async def test_any_query_text_is_safe(memory: BaseMemoryService, query: str) -> None:
    await memory.add_session_to_memory(session(said("user", "hello there")))

    found = await memory.search_memory(app_name=APP, user_id=USER, query=query)

    assert found.memories == []
    assert await search(memory, "hello") == ["hello there"]


async def test_text_with_nul_and_unicode_round_trips(memory: BaseMemoryService) -> None:
    await memory.add_session_to_memory(session(said("user", "Café crème\x00 à Zürich ☕")))

    (found,) = await search(memory, "zürich")

    assert found == "Café crème\x00 à Zürich ☕"


async def test_forgetting_a_user_removes_only_their_memories(memory: BaseMemoryService) -> None:
    await memory.add_session_to_memory(session(said("user", "secret one"), sid="s1"))
    await memory.add_session_to_memory(session(said("user", "secret two"), sid="s2"))
    await memory.add_session_to_memory(session(said("user", "secret other"), user="u2"))

    assert await memory.delete_memory(app_name=APP, user_id=USER, session_id="s1") == 1
    assert await search(memory, "secret") == ["secret two"]

    assert await memory.delete_memory(app_name=APP, user_id=USER) == 1
    assert await search(memory, "secret") == []
    assert await search(memory, "secret", user="u2") == ["secret other"]
    assert await memory.delete_memory(app_name=APP, user_id=USER) == 0


async def test_memories_survive_a_new_service_on_the_same_database(db_url: str) -> None:
    first = DatabaseMemoryService(db_url)
    second = DatabaseMemoryService(db_url)  # another process, or the next start
    dog = said("user", "my dog is called Rex")
    try:
        await first.add_session_to_memory(session(dog))
        await first.close()

        assert await search(second, "dog") == ["my dog is called Rex"]
        await second.add_session_to_memory(session(dog))
        assert await second.delete_memory(app_name=APP, user_id=USER) == 1
    finally:
        await first.close()
        await second.close()


@pytest.mark.postgres
async def test_postgres_language_is_configurable(pg_db_url: str) -> None:
    english = DatabaseMemoryService(pg_db_url)
    french = DatabaseMemoryService(pg_db_url, language="french")
    unknown = DatabaseMemoryService(pg_db_url, language="klingon")
    try:
        await french.check_language()
        await french.add_session_to_memory(session(said("user", "Les chevaux mangent")))
        await english.add_session_to_memory(session(said("user", "Les chevaux"), user="en"))
        # French stemming: "chevaux" is the plural of "cheval"; English knows nothing of it.
        assert await search(french, "cheval") == ["Les chevaux mangent"]
        assert await search(english, "cheval", user="en") == []
        with pytest.raises(ConfigError, match="klingon"):
            await unknown.check_language()
    finally:
        for service in (english, french, unknown):
            await service.close()


def test_language_must_be_an_identifier() -> None:
    with pytest.raises(ConfigError, match="language"):
        DatabaseMemoryService("sqlite+aiosqlite:///unused.db", language="english; DROP")


async def test_unmigrated_database_is_reported_as_unavailable(tmp_path: Path) -> None:
    service = DatabaseMemoryService(f"sqlite+aiosqlite:///{tmp_path}/empty.db")
    try:
        with pytest.raises(DatabaseUnavailableError, match="agent-service migrate"):
            await search(service, "anything")
    finally:
        await service.close()


async def test_sqlite_index_follows_deletes(sqlite_db_url: str) -> None:
    service = DatabaseMemoryService(sqlite_db_url)
    try:
        await service.add_session_to_memory(session(said("user", "orange kites")))
        await service.delete_memory(app_name=APP, user_id=USER)
        async with service.engine.connect() as conn:
            hits = await conn.execute(
                sa.text("SELECT count(*) FROM memory_fts WHERE memory_fts MATCH 'kites'")
            )
            assert hits.scalar_one() == 0
    finally:
        await service.close()


@pytest.fixture(params=BACKENDS[1:])
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of a database with no tables yet, on each database backend."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_empty_db_url")
        return url
    return f"sqlite+aiosqlite:///{tmp_path / 'empty.db'}"


async def _tables(url: str) -> set[str]:
    engine = create_engine(url, poolclass=pool.NullPool)
    try:
        async with engine.connect() as conn:
            return set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))
    finally:
        await engine.dispose()


async def _downgrade(url: str, revision: str) -> None:
    config = alembic_config()
    engine = create_engine(url, poolclass=pool.NullPool)

    def run(connection: sa.Connection) -> None:
        config.attributes["connection"] = connection
        command.downgrade(config, revision)

    try:
        async with transaction_engine(engine).connect() as conn:
            await conn.run_sync(run)
            await conn.commit()
    finally:
        await engine.dispose()


async def test_memory_migration_upgrades_downgrades_and_reruns(empty_db_url: str) -> None:
    await upgrade(empty_db_url, "0002")
    assert "memory_entries" not in await _tables(empty_db_url)

    await upgrade(empty_db_url)
    assert {"memory_entries", "session_closures", "sessions"} <= await _tables(empty_db_url)
    service = DatabaseMemoryService(empty_db_url)
    try:
        await service.add_session_to_memory(session(said("user", "kept across upgrades")))
        await upgrade(empty_db_url)  # again: a no-op, data included
        assert await search(service, "upgrades") == ["kept across upgrades"]
    finally:
        await service.close()

    await _downgrade(empty_db_url, "0002")
    tables = await _tables(empty_db_url)
    assert not {"memory_entries", "session_closures", "memory_fts"} & tables
    assert "sessions" in tables and "artifacts" in tables

    await upgrade(empty_db_url)
    service = DatabaseMemoryService(empty_db_url)
    try:
        await service.add_session_to_memory(session(said("user", "fresh after downgrade")))
        assert await search(service, "fresh") == ["fresh after downgrade"]
    finally:
        await service.close()


@pytest.mark.postgres
async def test_postgres_search_sent_by_asyncpg_agrees_with_sqlalchemy(pg_db_url: str) -> None:
    service = DatabaseMemoryService(pg_db_url)
    try:
        await service.add_session_to_memory(
            session(
                *[
                    said("user", f"note {i}: {' '.join(['tea'] * (i % 4 + 1))} and cake {i}")
                    for i in range(30)
                ]
            )
        )
        for query, limit in (("tea", 10), ("cake tea", 5), ("nothing", 10), ("note 7", 30)):
            found = await service.search_memory(
                app_name=APP, user_id=USER, query=query, limit=limit
            )
            params = {
                "language": "english",
                "query": " or ".join(query_words(query)),
                "app_name": APP,
                "user_id": USER,
                "limit": limit,
            }
            async with service.engine.connect() as conn:
                rows = (await conn.execute(POSTGRES_SEARCH, params)).all()
            assert [m.id for m in found.memories] == [row.event_id for row in rows]
    finally:
        await service.close()


@pytest.mark.postgres
async def test_postgres_search_on_an_unmigrated_database_is_unavailable(
    pg_empty_db_url: str,
) -> None:
    service = DatabaseMemoryService(pg_empty_db_url)
    try:
        for _ in range(2):  # the pooled connection stays usable after the failure
            with pytest.raises(DatabaseUnavailableError, match="agent-service migrate"):
                await search(service, "anything")
    finally:
        await service.close()
