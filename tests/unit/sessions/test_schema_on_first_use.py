"""DatabaseSessionService(url) on an empty database creates the schema; other revisions refuse."""

from __future__ import annotations

from pathlib import Path

import pytest
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import create_async_engine

from app.errors import DatabaseUnavailableError
from app.sessions import DatabaseSessionService
from app.sessions.migration import current_revision, head_revision, upgrade

from .session_stores import DATABASE_BACKENDS


@pytest.fixture(params=DATABASE_BACKENDS)
def empty_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A database with no tables, on each database backend, as the reference's URLs name it."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_empty_db_url")
        return url.replace("postgresql+asyncpg://", "postgresql://")
    return f"sqlite:///{tmp_path / 'fresh.db'}"


async def test_an_empty_database_gets_the_schema_on_first_use(empty_url: str) -> None:
    service = DatabaseSessionService(empty_url)
    try:
        session = await service.create_session(app_name="a", user_id="u", state={"k": 1})
        assert await current_revision(service.engine) == head_revision()
        loaded = await service.get_session(app_name="a", user_id="u", session_id=session.id)
        assert loaded is not None and loaded.state == {"k": 1}
    finally:
        await service.close()
    second = DatabaseSessionService(empty_url)  # a database at head is used as it is
    try:
        assert await second.get_session(app_name="a", user_id="u", session_id=session.id)
    finally:
        await second.close()


async def test_a_database_behind_head_is_refused_naming_the_migrate_command(
    empty_url: str,
) -> None:
    await upgrade(empty_url, revision="0001")
    service = DatabaseSessionService(empty_url)
    try:
        with pytest.raises(DatabaseUnavailableError, match="run `agent-service migrate`") as info:
            await service.list_sessions(app_name="a")
        assert "0001" in str(info.value)
        with pytest.raises(DatabaseUnavailableError, match="agent-service migrate"):
            await service.create_session(app_name="a", user_id="u")
        assert await current_revision(service.engine) == "0001"  # left alone
    finally:
        await service.close()


async def test_foreign_session_tables_are_not_migrated_over(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    engine = create_async_engine(f"sqlite+aiosqlite:///{path}")
    async with engine.begin() as conn:
        await conn.execute(sa.text("CREATE TABLE sessions (id TEXT PRIMARY KEY)"))
    await engine.dispose()
    service = DatabaseSessionService(f"sqlite:///{path}")
    try:
        with pytest.raises(DatabaseUnavailableError, match="no agent-service migration created"):
            await service.create_session(app_name="a", user_id="u")
        assert await current_revision(service.engine) is None
    finally:
        await service.close()


async def test_an_unknown_newer_revision_is_refused(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'newer.db'}"
    await upgrade(url)
    engine = create_async_engine(f"sqlite+aiosqlite:///{tmp_path / 'newer.db'}")
    async with engine.begin() as conn:
        await conn.execute(sa.text("UPDATE alembic_version SET version_num = '9999'"))
    await engine.dispose()
    service = DatabaseSessionService(url)
    try:
        with pytest.raises(DatabaseUnavailableError, match="9999, which this version does not"):
            await service.ping()
    finally:
        await service.close()


async def test_create_schema_false_leaves_an_empty_database_alone(tmp_path: Path) -> None:
    service = DatabaseSessionService(f"sqlite:///{tmp_path / 'manual.db'}", create_schema=False)
    try:
        with pytest.raises(DatabaseUnavailableError, match="agent-service migrate"):
            await service.create_session(app_name="a", user_id="u")
        assert await current_revision(service.engine) is None
    finally:
        await service.close()


@pytest.mark.parametrize("name", ["sessions.db", ":memory:"])
async def test_sqlite_session_service_takes_a_path(tmp_path: Path, name: str) -> None:
    from app.sessions.sqlite_session_service import SqliteSessionService

    path = name if name == ":memory:" else str(tmp_path / name)
    service = SqliteSessionService(path)
    try:
        session = await service.create_session(app_name="a", user_id="u")
        assert await service.get_session(app_name="a", user_id="u", session_id=session.id)
    finally:
        await service.close()
    assert name == ":memory:" or (tmp_path / name).is_file()
