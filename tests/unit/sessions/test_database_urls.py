"""DatabaseSessionService URLs: what is accepted, rewritten, refused, and how failures read."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from app.cli import main
from app.errors import ConfigError, DatabaseUnavailableError
from app.sessions import DatabaseSessionService
from app.sessions.migration import MIGRATIONS_DIR_ENV, current_revision, migrations_dir, upgrade
from app.testing.postgres import free_port

SECRET = "hunter2-s3cret"


@pytest.mark.parametrize(
    ("url", "fix"),
    [
        (f"postgresql+psycopg2://bob:{SECRET}@db.example/agents", "postgresql+asyncpg://"),
        (f"postgresql+psycopg://bob:{SECRET}@db.example/agents", "postgresql+asyncpg://"),
        (f"postgres+pg8000://bob:{SECRET}@db.example/agents", "postgresql+asyncpg://"),
        ("sqlite+pysqlite:///./data/x.db", "sqlite+aiosqlite://"),
    ],
)
def test_sync_driver_is_refused_with_the_async_one_to_use(url: str, fix: str) -> None:
    with pytest.raises(ConfigError) as info:
        DatabaseSessionService(url)
    message = str(info.value)
    assert "not an asyncio driver" in message and fix in message
    assert SECRET not in message


@pytest.mark.parametrize(
    "url",
    [
        f"mysql://bob:{SECRET}@db.example/agents",
        f"redis://:{SECRET}@cache.example:6379/0",
        f"oracle+oracledb://bob:{SECRET}@db.example/agents",
    ],
)
def test_unknown_scheme_is_refused_with_the_supported_ones(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        DatabaseSessionService(url)
    message = str(info.value)
    assert "Unsupported database URL scheme" in message
    assert "postgresql+asyncpg://" in message and "sqlite+aiosqlite://" in message
    assert SECRET not in message


@pytest.mark.parametrize("url", [f"not a url {SECRET}", f"://bob:{SECRET}@"])
def test_unparseable_url_is_refused_without_echoing_it(url: str) -> None:
    with pytest.raises(ConfigError) as info:
        DatabaseSessionService(url)
    assert "could not parse" in str(info.value) and SECRET not in str(info.value)


@pytest.mark.parametrize(
    "url",
    ["sqlite://", "sqlite:///:memory:", "sqlite+aiosqlite://", "sqlite+aiosqlite:///:memory:"],
)
async def test_in_memory_sqlite_lives_as_long_as_the_service(url: str) -> None:
    service = DatabaseSessionService(url)
    other = DatabaseSessionService(url)
    try:
        assert service.engine.url.drivername == "sqlite+aiosqlite"
        session = await service.create_session(app_name="a", user_id="u", state={"k": 1})
        # Concurrent calls share the one connection that holds the database.
        copies = await asyncio.gather(
            *(
                service.get_session(app_name="a", user_id="u", session_id=session.id)
                for _ in range(5)
            ),
            service.create_session(app_name="a", user_id="u", session_id="second"),
        )
        assert all(copy is not None for copy in copies)
        listed = await service.list_sessions(app_name="a", user_id="u")
        assert sorted(s.id for s in listed.sessions) == sorted([session.id, "second"])
        # Another service on the same URL has its own, separate database.
        assert (await other.list_sessions(app_name="a", user_id="u")).sessions == []
    finally:
        await service.close()
        await other.close()


@pytest.mark.parametrize(
    ("url", "driver"),
    [
        ("postgres://bob:pw@127.0.0.1:5432/agents", "postgresql+asyncpg"),
        ("postgresql://bob:pw@127.0.0.1:5432/agents", "postgresql+asyncpg"),
        ("postgresql+asyncpg://bob:pw@127.0.0.1:5432/agents", "postgresql+asyncpg"),
    ],
)
async def test_plain_postgres_schemes_use_asyncpg(url: str, driver: str) -> None:
    service = DatabaseSessionService(url)
    try:
        assert service.engine.url.drivername == driver
        assert service.engine.url.database == "agents"
    finally:
        await service.close()


async def test_sqlite_url_is_rewritten_and_its_directory_created(tmp_path: Path) -> None:
    path = tmp_path / "deep" / "er" / "sessions.db"
    service = DatabaseSessionService(f"sqlite:///{path}")
    try:
        assert service.engine.url.drivername == "sqlite+aiosqlite"
        assert path.parent.is_dir()
        await upgrade(service.engine)
        session = await service.create_session(app_name="a", user_id="u")
        assert await service.get_session(app_name="a", user_id="u", session_id=session.id)
    finally:
        await service.close()
    assert path.is_file()


async def test_default_url_is_a_sqlite_file_under_data(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    service = DatabaseSessionService()
    try:
        assert service.engine.url.drivername == "sqlite+aiosqlite"
        assert (tmp_path / "data").is_dir()
    finally:
        await service.close()


async def test_unreachable_server_fails_clearly_without_the_password() -> None:
    port = free_port()  # nothing listens there
    url = f"postgresql://bob:{SECRET}@127.0.0.1:{port}/agents"
    service = DatabaseSessionService(url)
    try:
        for call in (
            service.ping(),
            service.get_session(app_name="a", user_id="u", session_id="s"),
            service.create_session(app_name="a", user_id="u"),
            service.list_sessions(app_name="a"),
        ):
            with pytest.raises(DatabaseUnavailableError) as info:
                await call
            message = str(info.value)
            assert f"127.0.0.1:{port}" in message and "connection refused" in message
            assert "bob:***@" in message and SECRET not in message
    finally:
        await service.close()
    with pytest.raises(DatabaseUnavailableError) as info:
        await upgrade(url)
    assert SECRET not in str(info.value)
    with pytest.raises(DatabaseUnavailableError):
        await current_revision(url)


def test_migrate_cli_reports_unreachable_server_and_bad_urls(
    capsys: pytest.CaptureFixture[str],
) -> None:
    port = free_port()
    assert main(["migrate", "--database-url", f"postgres://bob:{SECRET}@127.0.0.1:{port}/x"]) == 2
    err = capsys.readouterr().err
    assert "unavailable" in err and SECRET not in err
    assert main(["migrate", "--check", "--database-url", f"mysql://bob:{SECRET}@h/x"]) == 2
    err = capsys.readouterr().err
    assert "Unsupported database URL scheme" in err and SECRET not in err


def test_migrations_dir_comes_from_the_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    default = migrations_dir()
    assert (default / "versions").is_dir()
    monkeypatch.setenv(MIGRATIONS_DIR_ENV, str(tmp_path))
    with pytest.raises(ConfigError, match=MIGRATIONS_DIR_ENV):
        migrations_dir()
    monkeypatch.setenv(MIGRATIONS_DIR_ENV, str(default))
    assert migrations_dir() == default


def test_engine_and_url_are_exclusive() -> None:
    with pytest.raises(ConfigError):
        DatabaseSessionService("sqlite:///x.db", engine=object())  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        DatabaseSessionService("sqlite:///x.db", cache_size=-1)
