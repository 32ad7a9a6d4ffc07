"""Apply and inspect the alembic migrations that own the session store's schema.

All functions are coroutines and can run inside a running event loop (a server's lifespan, a
test): alembic's synchronous code runs on the async connection through `run_sync`.

    await upgrade("postgresql+asyncpg://app:secret@db/agents")
    if not await is_at_head(url): ...
"""

from __future__ import annotations

import asyncio
import functools
import logging
import os
import threading
from collections.abc import AsyncIterator, Iterable
from contextlib import asynccontextmanager
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import pool
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine

import app
from app.errors import ConfigError, DatabaseUnavailableError
from app.sessions._engine import (
    DEFAULT_DATABASE_URL,
    create_engine,
    redact,
    transaction_engine,
    unavailable_error,
)

logger = logging.getLogger(__name__)

MIGRATIONS_DIR_ENV = "AGENT_SERVICE_MIGRATIONS_DIR"
"""Environment variable that overrides where the migrations folder is."""

# alembic's `context`/`op` proxies are module globals: one command at a time per process,
# whatever the event loop or thread. (Between processes, env.py takes an advisory lock.)
_ALEMBIC_LOCK = threading.Lock()


def migrations_dir() -> Path:
    """Return the alembic folder: `$AGENT_SERVICE_MIGRATIONS_DIR`, else the one shipped.

    The wheel carries the migrations as `app/_migrations`; a checkout (editable install) has
    them in `<repo>/migrations`.

    Raises:
        ConfigError: the folder has no `env.py`.
    """
    configured = os.environ.get(MIGRATIONS_DIR_ENV)
    if configured:
        candidates = [Path(configured)]
    else:
        package = Path(app.__file__).resolve().parent
        candidates = [package / "_migrations", package.parent / "migrations"]
    for path in candidates:
        if (path / "env.py").is_file():
            return path
    source = MIGRATIONS_DIR_ENV if configured else "the installed package or the repository root"
    raise ConfigError(
        f"No alembic migrations found in {' or '.join(map(str, candidates))} (from {source}); "
        f"set {MIGRATIONS_DIR_ENV} to the folder holding env.py and versions/."
    )


def alembic_config() -> Config:
    """Return an alembic `Config` for our migrations, built without an alembic.ini."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    return config


def head_revision() -> str | None:
    """Return the newest revision in the migrations folder."""
    return ScriptDirectory.from_config(alembic_config()).get_current_head()


async def upgrade(
    db_url_or_engine: str | AsyncEngine | None = None, revision: str = "head"
) -> None:
    """Migrate the database to `revision` (default: the newest); a no-op when already there.

    Raises:
        ConfigError: the URL is invalid.
        DatabaseUnavailableError: the database cannot be reached.
    """
    config = alembic_config()

    def run(connection: sa.Connection) -> None:
        config.attributes["connection"] = connection
        command.upgrade(config, revision)

    async with _alembic_turn(), _connection(db_url_or_engine) as conn:
        await conn.run_sync(run)
        await conn.commit()
    logger.info("database migrated url=%s revision=%s", _describe(db_url_or_engine), revision)


async def current_revision(db_url_or_engine: str | AsyncEngine | None = None) -> str | None:
    """Return the database's current revision, or None when it was never migrated.

    Raises:
        DatabaseUnavailableError: the database cannot be reached.
    """

    def read(connection: sa.Connection) -> str | None:
        return MigrationContext.configure(connection).get_current_revision()

    async with _connection(db_url_or_engine) as conn:
        return await conn.run_sync(read)


async def check_schema(engine: AsyncEngine, tables: Iterable[str]) -> None:
    """Check, in one short query, that the database is at the newest revision and that each
    of `tables` answers (a readiness probe: it reads no rows of them).

    The newest revision is read from the migrations folder once per process.

    Raises:
        DatabaseUnavailableError: the database cannot be reached, a table is missing, or the
            schema is at another revision.
    """
    # `WHERE false` reads nothing, but the server still resolves each table (and our right
    # to read it) while planning.
    probes = [sa.select(sa.null()).select_from(sa.table(name)).where(sa.false()) for name in tables]
    version: sa.ColumnClause[str | None] = sa.column("version_num")
    versions = sa.select(version).select_from(sa.table("alembic_version"))
    try:
        async with engine.connect() as conn:
            found = set((await conn.execute(sa.union_all(versions, *probes))).scalars())
    except Exception as exc:
        translated = unavailable_error(exc, engine.url)
        if translated is None:
            raise
        raise translated from exc
    if found != {_cached_head_revision()}:
        logger.warning(
            "database schema not at head url=%s revisions=%s head=%s",
            redact(engine.url),
            ",".join(sorted(str(r) for r in found)) or "-",
            _cached_head_revision(),
        )
        message = "The database schema is not at the newest revision; run `agent-service migrate`."
        raise DatabaseUnavailableError(message, public_detail=message)


@functools.cache
def _cached_head_revision() -> str | None:
    return head_revision()


async def is_at_head(db_url_or_engine: str | AsyncEngine | None = None) -> bool:
    """Return True when the database is at the newest revision.

    Raises:
        DatabaseUnavailableError: the database cannot be reached.
    """
    return await current_revision(db_url_or_engine) == head_revision()


_SESSION_TABLES = frozenset({"sessions", "events", "app_states", "user_states"})


async def prepare_schema(engine: AsyncEngine) -> None:
    """Create the schema on an empty database; accept one at head; refuse any other.

    Raises:
        DatabaseUnavailableError: the database is behind (or ahead of) the newest revision,
            or holds session tables that no migration created; the message says what to run.
    """
    head = head_revision()
    revision = await current_revision(engine)
    if revision == head:
        return
    where = redact(engine.url)
    if revision is None:
        async with _connection(engine) as conn:
            tables = set(await conn.run_sync(lambda c: sa.inspect(c).get_table_names()))
        if tables & _SESSION_TABLES:
            raise DatabaseUnavailableError(
                f"The database {where} has session tables that no agent-service migration "
                "created (another tool's schema?); use an empty database or one prepared "
                "with `agent-service migrate`."
            )
        logger.info("creating the schema on an empty database url=%s", where)
        await upgrade(engine)
        return
    known = {
        script.revision for script in ScriptDirectory.from_config(alembic_config()).walk_revisions()
    }
    if revision not in known:
        raise DatabaseUnavailableError(
            f"The database {where} is at schema revision {revision}, which this version does "
            "not know (a newer agent-service migrated it); upgrade agent-service."
        )
    raise DatabaseUnavailableError(
        f"The database {where} is at schema revision {revision}, behind the newest ({head}); "
        "run `agent-service migrate` first."
    )


@asynccontextmanager
async def _alembic_turn() -> AsyncIterator[None]:
    """Hold the process-wide alembic lock without blocking the event loop."""
    # A thread lock (not asyncio.Lock): callers may run on different loops and threads.
    while not _ALEMBIC_LOCK.acquire(blocking=False):  # noqa: ASYNC110 - no loop-free event
        await asyncio.sleep(0.005)  # another upgrade is running; they take milliseconds
    try:
        yield
    finally:
        _ALEMBIC_LOCK.release()


@asynccontextmanager
async def _connection(
    db_url_or_engine: str | AsyncEngine | None,
) -> AsyncIterator[AsyncConnection]:
    """Yield a transactional connection, translating connection failures."""
    owned = not isinstance(db_url_or_engine, AsyncEngine)
    engine = (
        create_engine(db_url_or_engine or DEFAULT_DATABASE_URL, poolclass=pool.NullPool)
        if not isinstance(db_url_or_engine, AsyncEngine)
        else db_url_or_engine
    )
    try:
        async with transaction_engine(engine).connect() as conn:
            yield conn
    except Exception as exc:
        translated = unavailable_error(exc, engine.url)
        if translated is None:
            raise
        raise translated from exc
    finally:
        if owned:
            await engine.dispose()


def _describe(db_url_or_engine: str | AsyncEngine | None) -> str:
    if isinstance(db_url_or_engine, AsyncEngine):
        return redact(db_url_or_engine.url)
    return redact(db_url_or_engine or DEFAULT_DATABASE_URL)
