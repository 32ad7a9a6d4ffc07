"""DatabaseSessionService when Postgres goes away: clean failures, no half-written events,
and recovery without a restart of the service."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from typing import Any

import asyncpg
import pytest
from google.genai import types
from sqlalchemy.pool import QueuePool

from app.errors import DatabaseUnavailableError
from app.events import Event
from app.sessions import DatabaseSessionService, Session
from app.sessions.migration import upgrade
from app.testing.postgres import PostgresCluster, find_bin_dir
from tests.integration.helpers import dsn, terminate_other_backends

pytestmark = pytest.mark.postgres

APP, USER = "app", "alice"


def message(text: str) -> Event:
    return Event(author="user", content=types.Content(role="user", parts=[types.Part(text=text)]))


async def stored_counts(url: str, session_id: str) -> tuple[int, int, int]:
    """Return (sessions.seq, number of event rows, max event seq) straight from the tables."""
    conn = await asyncpg.connect(dsn(url))
    try:
        row = await conn.fetchrow(
            "SELECT s.seq, count(e.seq) AS n, coalesce(max(e.seq), 0) AS top FROM sessions s "
            "LEFT JOIN events e ON e.app_name = s.app_name AND e.user_id = s.user_id "
            "AND e.session_id = s.id WHERE s.id = $1 GROUP BY s.seq",
            session_id,
        )
    finally:
        await conn.close()
    assert row is not None
    return row["seq"], row["n"], row["top"]


async def wait_for(condition_sql: str, url: str, timeout: float = 10.0) -> int:
    """Poll a query until it returns a row; return its first column."""
    conn = await asyncpg.connect(dsn(url))
    try:
        async with asyncio.timeout(timeout):
            while True:
                value = await conn.fetchval(condition_sql)
                if value is not None:
                    return int(value)
                await asyncio.sleep(0.01)
    finally:
        await conn.close()


@pytest.fixture
def own_cluster() -> Iterator[PostgresCluster]:
    """A throwaway Postgres for this test alone: it will be stopped and started again."""
    if find_bin_dir() is None:
        pytest.skip("needs local PostgreSQL server binaries (initdb, pg_ctl) to restart a server")
    cluster = PostgresCluster.start_new()
    try:
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
async def service(pg_db_url: str) -> AsyncIterator[DatabaseSessionService]:
    svc = DatabaseSessionService(pg_db_url)
    try:
        yield svc
    finally:
        await svc.close()


async def test_restart_fails_the_call_cleanly_then_recovers(own_cluster: PostgresCluster) -> None:
    url = own_cluster.url()
    await upgrade(url)
    service = DatabaseSessionService(url)
    try:
        session = await service.create_session(app_name=APP, user_id=USER, state={"n": 0})
        for text in ("one", "two"):
            await service.append_event(session, message(text))

        await asyncio.to_thread(own_cluster.stop, "fast")
        during = message("during the outage")
        async with asyncio.timeout(10):  # fails fast: no hang on a dead server
            with pytest.raises(DatabaseUnavailableError, match=r"unavailable|dropped"):
                await service.append_event(session, during)
            with pytest.raises(DatabaseUnavailableError):
                await service.get_session(app_name=APP, user_id=USER, session_id=session.id)
        assert during.seq is None  # nothing of the failed append leaked into the objects
        assert session.last_seq == 2 and len(session.events) == 2

        await asyncio.to_thread(own_cluster.start)
        loaded = await service.get_session(app_name=APP, user_id=USER, session_id=session.id)
        assert loaded is not None
        assert [e.text() for e in loaded.events] == ["one", "two"] and loaded.last_seq == 2
        await service.append_event(session, message("three"))  # the same object goes on
        assert session.last_seq == 3
    finally:
        await service.close()
    assert await stored_counts(url, session.id) == (3, 3, 3)


async def test_connection_killed_mid_append_writes_nothing(
    service: DatabaseSessionService, pg_db_url: str
) -> None:
    session = await service.create_session(app_name=APP, user_id=USER)
    await service.append_event(session, message("before"))

    # Hold the session row so the append blocks inside the database, then kill its backend.
    blocker = await asyncpg.connect(dsn(pg_db_url))
    try:
        tx = blocker.transaction()
        await tx.start()
        await blocker.execute("SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE", session.id)
        victim = message("killed")
        append = asyncio.create_task(service.append_event(session, victim))
        pid = await wait_for(
            "SELECT pid FROM pg_stat_activity WHERE datname = current_database() "
            "AND wait_event_type = 'Lock' LIMIT 1",
            pg_db_url,
        )
        await blocker.fetchval("SELECT pg_terminate_backend($1)", pid)
        async with asyncio.timeout(10):
            with pytest.raises(DatabaseUnavailableError):
                await append
        await tx.rollback()
    finally:
        await blocker.close()

    assert victim.seq is None and session.last_seq == 1
    assert await stored_counts(pg_db_url, session.id) == (1, 1, 1)
    await service.append_event(session, message("after"))  # reconnects on its own
    loaded = await service.get_session(app_name=APP, user_id=USER, session_id=session.id)
    assert loaded is not None and [e.text() for e in loaded.events] == ["before", "after"]
    assert await stored_counts(pg_db_url, session.id) == (2, 2, 2)


async def test_idle_connections_dropped_by_the_server_are_replaced(
    service: DatabaseSessionService, pg_db_url: str
) -> None:
    sessions: list[Session] = [
        await service.create_session(app_name=APP, user_id=USER) for _ in range(3)
    ]
    killed = await terminate_other_backends(pg_db_url)
    assert killed >= 1
    for session in sessions:  # pool_pre_ping notices and reconnects: no error at all
        await service.append_event(session, message("still here"))
    listed = await service.list_sessions(app_name=APP, user_id=USER)
    assert sorted(s.last_seq for s in listed.sessions) == [1, 1, 1]


# --- the hot paths run on the asyncpg connection itself; they handle its failures -----------


def idle_connections(service: DatabaseSessionService) -> int:
    """Connections not in use: idle in the pool, or kept checked out for the hot paths."""
    pool = service.engine.pool
    assert isinstance(pool, QueuePool)
    return pool.checkedin() + len(getattr(service._sql, "_connections", ()))


async def fill_pool(service: DatabaseSessionService, session: Session, size: int) -> None:
    """Leave `size` idle connections in the service's pool (concurrent loads open them)."""
    await asyncio.gather(
        *(
            service.get_session(app_name=APP, user_id=USER, session_id=session.id)
            for _ in range(size)
        )
    )
    assert idle_connections(service) >= size - 1


async def calls_after_an_outage(service: DatabaseSessionService, session: Session) -> int:
    """Run every hot path a few times; return how many calls failed as unavailable."""
    key: dict[str, Any] = {"app_name": APP, "user_id": USER, "session_id": session.id}
    calls = [
        lambda: service.get_session(**key),
        lambda: service.append_event(session, message("after")),
        lambda: service.list_events(**key, after_seq=session.last_seq - 1),
        lambda: service.create_session(app_name=APP, user_id=USER),
    ]
    failures = 0
    for call in calls * 3:
        try:
            await call()
        except DatabaseUnavailableError:
            failures += 1
    return failures


@pytest.mark.parametrize("where", ["pool", "hot"])
async def test_restart_without_pre_ping_fails_at_most_one_call_then_recovers(
    own_cluster: PostgresCluster, where: str
) -> None:
    # As the server runs it: no pre-ping, so the pool cannot notice a restart by itself.
    url = own_cluster.url()
    await upgrade(url)
    service = DatabaseSessionService(url, pool_pre_ping=False)
    try:
        session = await service.create_session(app_name=APP, user_id=USER)
        await service.append_event(session, message("before"))
        await fill_pool(service, session, 4)
        if where == "pool":
            await service._sql.close()  # idle in the pool rather than kept for the hot paths
            assert idle_connections(service) == service.engine.pool.checkedin()

        await asyncio.to_thread(own_cluster.stop, "fast")
        await asyncio.to_thread(own_cluster.start)
        first = message("first after the restart")
        if where == "pool":
            # Every pooled connection is dead. The first call meets one and fails; that
            # failure invalidates the rest of the pool, so no other call meets a dead one.
            with pytest.raises(DatabaseUnavailableError, match="unavailable"):
                await service.append_event(session, first)
            assert first.seq is None and session.last_seq == 1
        else:
            # Hot connections the server closed are noticed (closed sockets) and replaced.
            await service.append_event(session, first)
        assert await calls_after_an_outage(service, session) == 0
        loaded = await service.get_session(app_name=APP, user_id=USER, session_id=session.id)
        assert loaded is not None and loaded.last_seq == (4 if where == "pool" else 5)
    finally:
        await service.close()
    assert await stored_counts(url, session.id) == ((4, 4, 4) if where == "pool" else (5, 5, 5))


async def test_killed_connections_without_pre_ping_cost_one_failed_call(pg_db_url: str) -> None:
    service = DatabaseSessionService(pg_db_url, pool_pre_ping=False)
    try:
        session = await service.create_session(app_name=APP, user_id=USER)
        await fill_pool(service, session, 4)
        killed = await terminate_other_backends(pg_db_url)
        assert killed >= 3
        assert await calls_after_an_outage(service, session) <= 1
    finally:
        await service.close()


async def test_cancelled_call_is_cancelled_in_the_database_too(pg_db_url: str) -> None:
    service = DatabaseSessionService(pg_db_url, pool_pre_ping=False)
    try:
        session = await service.create_session(app_name=APP, user_id=USER)
        await service.append_event(session, message("before"))
        blocker = await asyncpg.connect(dsn(pg_db_url))
        try:
            tx = blocker.transaction()
            await tx.start()
            await blocker.execute("SELECT 1 FROM sessions WHERE id = $1 FOR UPDATE", session.id)
            victim = message("cancelled")
            with pytest.raises(TimeoutError):
                await asyncio.wait_for(service.append_event(session, victim), 0.5)
            # The statement no longer waits for the lock: it would write once the lock is free.
            waiting = await blocker.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                "AND wait_event_type = 'Lock'"
            )
            assert waiting == 0
            await tx.rollback()
        finally:
            await blocker.close()
        assert victim.seq is None and session.last_seq == 1
        assert await stored_counts(pg_db_url, session.id) == (1, 1, 1)
        # The interrupted connection is not handed out again mid-statement.
        for text in ("after", "and after"):
            await service.append_event(session, message(text))
        loaded = await service.get_session(app_name=APP, user_id=USER, session_id=session.id)
        assert loaded is not None
        assert [e.text() for e in loaded.events] == ["before", "after", "and after"]
    finally:
        await service.close()


async def test_prepared_statements_survive_a_column_type_change(pg_db_url: str) -> None:
    service = DatabaseSessionService(pg_db_url)
    try:
        session = await service.create_session(app_name=APP, user_id=USER)
        await service.append_event(session, message("one"))
        key: dict[str, Any] = {"app_name": APP, "user_id": USER, "session_id": session.id}
        replica = DatabaseSessionService(pg_db_url, cache_size=0)
        try:
            assert await replica.get_session(**key) is not None  # statements now prepared
            assert len(await replica.list_events(**key)) == 1
            # The result types of the prepared load and list statements change under them.
            admin = await asyncpg.connect(dsn(pg_db_url))
            try:
                await admin.execute("ALTER TABLE events ALTER COLUMN event_json TYPE varchar")
                await admin.execute("ALTER TABLE sessions ALTER COLUMN seq TYPE numeric")
            finally:
                await admin.close()
            loaded = await replica.get_session(**key)
            assert loaded is not None and [e.text() for e in loaded.events] == ["one"]
            assert len(await replica.list_events(**key)) == 1
            await service.append_event(session, message("two"))
            loaded = await replica.get_session(**key)
            assert loaded is not None and [e.text() for e in loaded.events] == ["one", "two"]
        finally:
            await replica.close()
    finally:
        await service.close()


async def test_unmigrated_database_is_reported_on_every_hot_path(pg_empty_db_url: str) -> None:
    # create_schema=False: nothing prepares the schema, so every path meets the missing tables.
    service = DatabaseSessionService(pg_empty_db_url, pool_pre_ping=False, create_schema=False)
    session = Session(id="s", app_name=APP, user_id=USER)
    key: dict[str, Any] = {"app_name": APP, "user_id": USER, "session_id": "s"}
    try:
        for call in (
            lambda: service.get_session(**key),
            lambda: service.append_event(session, message("x")),
            lambda: service.list_events(**key),
            lambda: service.create_session(app_name=APP, user_id=USER),
        ):
            with pytest.raises(DatabaseUnavailableError, match="agent-service migrate"):
                await call()
        assert idle_connections(service) == 1  # a missing table is no reason to reconnect
    finally:
        await service.close()


async def test_a_statement_refused_as_stale_twice_is_retried_once_more(
    pg_db_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # asyncpg retries an InvalidCachedStatementError once by itself; one more refusal (a second
    # schema change meanwhile) is retried by the service, on the same connection.
    service = DatabaseSessionService(pg_db_url)
    try:
        session = await service.create_session(app_name=APP, user_id=USER)
        refusals = 0
        real_fetchrow = asyncpg.Connection.fetchrow

        async def refuse_once(self: asyncpg.Connection, query: str, *args: object) -> object:
            nonlocal refusals
            if refusals == 0 and "FROM sessions" in query:  # not the pre-ping
                refusals += 1
                raise asyncpg.InvalidCachedStatementError("cached statement plan is invalid")
            return await real_fetchrow(self, query, *args)

        monkeypatch.setattr(asyncpg.Connection, "fetchrow", refuse_once)
        loaded = await service.get_session(app_name=APP, user_id=USER, session_id=session.id)
        assert loaded is not None and refusals == 1
        monkeypatch.undo()
        assert idle_connections(service) == 1  # the same connection, kept
    finally:
        await service.close()
