"""The database failing under a running app: 503 problems that never say where the database
is, and a `/readyz` that checks the schema's revision and tables."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import asyncpg
import httpx
import pytest
import sqlalchemy as sa

from app.sessions._engine import create_engine
from app.sessions.migration import head_revision, upgrade
from app.testing.postgres import PostgresCluster, find_bin_dir
from tests.conftest import asyncpg_dsn

from .conftest import ClientFactory
from .helpers import assert_problem, message

ROLE = "carol_dbuser"
DATABASE = "ledger_agents"
PASSWORD = "hunter2pw"
BASE = "/apps/scripted/users/u1/sessions"


@pytest.fixture
def own_cluster() -> Iterator[PostgresCluster]:
    """A throwaway Postgres for this test alone: it will be stopped."""
    if find_bin_dir() is None:
        pytest.skip("needs local PostgreSQL server binaries (initdb, pg_ctl) to stop a server")
    cluster = PostgresCluster.start_new()
    try:
        yield cluster
    finally:
        cluster.destroy()


async def _admin(cluster: PostgresCluster, *statements: str) -> None:
    conn = await asyncpg.connect(asyncpg_dsn(cluster.url("postgres")))
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


def _assert_hides_the_database(response: httpx.Response, port: int) -> dict[str, Any]:
    body = assert_problem(response, 503, "database_unavailable")
    for secret in (ROLE, DATABASE, PASSWORD, "127.0.0.1", "localhost", str(port), "postgresql"):
        assert secret not in response.text, (secret, response.text)
    return body


async def _every_route_fails(client: httpx.AsyncClient, port: int) -> list[str]:
    """Hit a read, a write, a run and /readyz; return the problems' details."""
    responses = [
        await client.get(f"{BASE}/s1"),
        await client.post(BASE, json={"sessionId": "s2"}),
        await client.get(BASE),
        await client.post(f"{BASE}/s1:run", json={"newMessage": message("chat")}),
        await client.get("/readyz"),
    ]
    return [_assert_hides_the_database(r, port)["detail"] for r in responses]


@pytest.mark.postgres
async def test_503_bodies_never_name_the_database(
    own_cluster: PostgresCluster, make_client: ClientFactory, caplog: pytest.LogCaptureFixture
) -> None:
    port = own_cluster.port
    await _admin(
        own_cluster,
        f"CREATE ROLE {ROLE} LOGIN PASSWORD '{PASSWORD}'",
        f"CREATE DATABASE {DATABASE} OWNER {ROLE}",
    )
    url = f"postgresql+asyncpg://{ROLE}:{PASSWORD}@127.0.0.1:{port}/{DATABASE}"
    await upgrade(url)
    async with make_client(database_url=url) as client:
        assert (await client.post(BASE, json={"sessionId": "s1"})).status_code == 201
        assert (await client.get("/readyz")).status_code == 200

        # The role may no longer log in: its connections are cut, new ones are refused.
        await _admin(
            own_cluster,
            f"ALTER ROLE {ROLE} NOLOGIN",
            f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{ROLE}'",
        )
        details = await _every_route_fails(client, port)
        assert "authentication failed" in details[-1]

        # The database is gone.
        await _admin(
            own_cluster, f"ALTER ROLE {ROLE} LOGIN", f"DROP DATABASE {DATABASE} WITH (FORCE)"
        )
        details = await _every_route_fails(client, port)
        assert "does not exist" in details[-1]

        # The server is gone.
        own_cluster.stop()
        with caplog.at_level(logging.WARNING, logger="app.server.errors"):
            details = await _every_route_fails(client, port)
        assert "connection refused" in details[-1]
        # The operator's log does say where.
        assert f"127.0.0.1:{port}/{DATABASE}" in caplog.text
        assert PASSWORD not in caplog.text


@pytest.fixture(params=["sqlite", "postgres"])
def migrated_url(request: pytest.FixtureRequest) -> str:
    """A freshly migrated database of each kind."""
    if request.param == "postgres":
        request.applymarker(pytest.mark.postgres)
        return str(request.getfixturevalue("pg_db_url"))
    return str(request.getfixturevalue("sqlite_db_url"))


async def _execute(url: str, statement: str) -> None:
    engine = create_engine(url)
    try:
        async with engine.begin() as conn:
            await conn.execute(sa.text(statement))
    finally:
        await engine.dispose()


@pytest.mark.parametrize("table", ["events", "app_states", "artifacts"])
async def test_readyz_fails_while_a_table_is_missing(
    migrated_url: str, make_client: ClientFactory, table: str
) -> None:
    async with make_client(database_url=migrated_url) as client:
        assert (await client.get("/readyz")).status_code == 200
        await _execute(migrated_url, f"DROP TABLE {table}")
        body = assert_problem(await client.get("/readyz"), 503, "database_unavailable")
        assert "agent-service migrate" in body["detail"]


async def test_readyz_fails_while_the_schema_is_at_another_revision(
    migrated_url: str, make_client: ClientFactory
) -> None:
    head = head_revision()
    async with make_client(database_url=migrated_url) as client:
        assert (await client.get("/readyz")).status_code == 200
        for stamped in ("0001", "9999_from_the_future"):
            await _execute(migrated_url, f"UPDATE alembic_version SET version_num = '{stamped}'")
            body = assert_problem(await client.get("/readyz"), 503, "database_unavailable")
            assert "not at the newest revision" in body["detail"]
        await _execute(migrated_url, f"UPDATE alembic_version SET version_num = '{head}'")
        assert (await client.get("/readyz")).status_code == 200
        await _execute(migrated_url, "DELETE FROM alembic_version")
        assert_problem(await client.get("/readyz"), 503, "database_unavailable")
