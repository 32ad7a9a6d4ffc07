"""Shared fixtures: real databases for the session store, migrated by alembic.

Postgres (per docs TESTING.md), in this order:

1. `AGENT_SERVICE_TEST_DATABASE_URL` (never the app's own `AGENT_SERVICE_DATABASE_URL`): a server
   where the test user may CREATE DATABASE;
2. local server binaries (`initdb`/`pg_ctl` on PATH or in `/usr/lib/postgresql/*/bin`): a
   throwaway cluster (`app.testing.postgres`) on a free loopback port, stopped at the end;
3. otherwise the Postgres tests are skipped, with the reason.

The schema always comes from the migrations: a template database is migrated once per run, and
each test that asks for `pg_db_url` gets a fresh clone of it (`CREATE DATABASE ... TEMPLATE`).
SQLite works the same way with a migrated template file copied per test.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TypeVar

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from app.sessions._engine import normalize_url
from app.sessions.migration import upgrade
from app.testing.postgres import PostgresCluster, find_bin_dir

TEST_DATABASE_URL_ENV = "AGENT_SERVICE_TEST_DATABASE_URL"

T = TypeVar("T")


def run_async(fn: Callable[[], Awaitable[T]]) -> T:
    """Run a coroutine to completion on a private loop in a worker thread.

    For sync (e.g. session-scoped) fixtures: it never touches the test's event loop.
    """

    async def main() -> T:
        return await fn()

    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, main()).result()


def database_url(server_url: str, database: str) -> str:
    """Return `server_url` pointing at another database on the same server."""
    return make_url(server_url).set(database=database).render_as_string(hide_password=False)


def asyncpg_dsn(url: str) -> str:
    """Turn a SQLAlchemy URL into a DSN asyncpg.connect() accepts."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def create_database(server_url: str, name: str, template: str | None = None) -> str:
    """CREATE DATABASE `name` (optionally from a template) and return its URL."""
    conn = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        clause = f' TEMPLATE "{template}"' if template else ""
        await conn.execute(f'CREATE DATABASE "{name}"{clause}')
    finally:
        await conn.close()
    return database_url(server_url, name)


async def drop_database(server_url: str, name: str) -> None:
    """DROP DATABASE `name`, disconnecting whoever is still connected."""
    conn = await asyncpg.connect(asyncpg_dsn(server_url))
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """URL (`postgresql+asyncpg://`) of a PostgreSQL server's maintenance database.

    Comes from `AGENT_SERVICE_TEST_DATABASE_URL`, else from a throwaway local cluster started
    for this test run, else the test is skipped. Create your own databases on it; prefer
    `pg_db_url`, which gives a fresh migrated one.
    """
    configured = os.environ.get(TEST_DATABASE_URL_ENV)
    if configured:
        yield normalize_url(configured).render_as_string(hide_password=False)
        return
    bin_dir = find_bin_dir()
    if bin_dir is None:
        pytest.skip(
            "PostgreSQL not available: set AGENT_SERVICE_TEST_DATABASE_URL or install the "
            "server binaries (initdb, pg_ctl)"
        )
    cluster = PostgresCluster.start_new(bin_dir)  # binaries present: failing to start is an error
    try:
        yield cluster.url("postgres")
    finally:
        cluster.destroy()


@pytest.fixture(scope="session")
def pg_template(postgres_url: str) -> Iterator[str]:
    """Name of a database migrated to head once per run, the template of `pg_db_url`."""
    name = f"agent_service_tmpl_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        url = await create_database(postgres_url, name)
        await upgrade(url)  # disposes its engine: a template must have no connections

    run_async(create)
    try:
        yield name
    finally:
        run_async(lambda: drop_database(postgres_url, name))


@pytest.fixture
def pg_db_url(postgres_url: str, pg_template: str) -> Iterator[str]:
    """URL of a fresh Postgres database with the migrated schema, dropped after the test.

    A plain (sync) fixture, so async fixtures may also reach it via `request.getfixturevalue`.
    """
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = run_async(lambda: create_database(postgres_url, name, template=pg_template))
    try:
        yield url
    finally:
        run_async(lambda: drop_database(postgres_url, name))


@pytest.fixture
def pg_empty_db_url(postgres_url: str) -> Iterator[str]:
    """URL of a fresh, empty Postgres database (no tables), dropped after the test."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = run_async(lambda: create_database(postgres_url, name))
    try:
        yield url
    finally:
        run_async(lambda: drop_database(postgres_url, name))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A SQLite file migrated to head once per run, copied by `sqlite_db_url`."""
    path = tmp_path_factory.mktemp("sqlite-template") / "template.db"
    run_async(lambda: upgrade(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture
def sqlite_db_url(sqlite_template: Path, tmp_path: Path) -> str:
    """URL (`sqlite+aiosqlite:///...`) of a fresh SQLite file with the migrated schema."""
    path = tmp_path / "sessions.db"
    shutil.copyfile(sqlite_template, path)
    return f"sqlite+aiosqlite:///{path}"
