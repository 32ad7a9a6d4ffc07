"""Database URLs, async engines, and the translation of connection failures.

Shared by `DatabaseSessionService` and `app.sessions.migration`. Two drivers are supported:
`postgresql+asyncpg` (production) and `sqlite+aiosqlite` (the embedded default).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import pydantic_core
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, make_url
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import AsyncAdaptedQueuePool, Pool, PoolProxiedConnection

from app.errors import ConfigError, DatabaseUnavailableError

logger = logging.getLogger(__name__)

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///./data/agent-service.db"
"""Where sessions live when nothing is configured: a SQLite file under `./data/`."""

POSTGRES = "postgresql+asyncpg"
SQLITE = "sqlite+aiosqlite"

# Connection option the SQLite `begin` hook reads: writers take the write lock up front.
WRITE_OPTION = "agent_service_write"

_ALIASES = {"postgresql": POSTGRES, "postgres": POSTGRES, "sqlite": SQLITE}
_EXAMPLES = (
    "postgresql+asyncpg://USER:PASSWORD@HOST:5432/DATABASE or sqlite+aiosqlite:///path/to/file.db"
)
_FIX_HINT = (
    "Check that the server is running and reachable, and that the database URL "
    "(AGENT_SERVICE_DATABASE_URL or --database-url) is right."
)

_SQLITE_UNAVAILABLE = ("locked", "busy", "unable to open", "disk I/O", "readonly", "full")
_POSTGRES_CONNECT_ARGS: dict[str, Any] = {
    "timeout": 10,  # asyncpg's default is 60 s: an unreachable host would hang that long
    "server_settings": {"application_name": "agent-service"},
}


def normalize_url(url: str | URL) -> URL:
    """Parse a database URL and rewrite plain schemes to the async drivers.

    `postgresql://` and `postgres://` become `postgresql+asyncpg://`, `sqlite://` becomes
    `sqlite+aiosqlite://`.

    Raises:
        ConfigError: the URL cannot be parsed or names a synchronous or unknown driver.
    """
    try:
        parsed = make_url(url)
    except (sa_exc.ArgumentError, ValueError) as exc:
        # Not parseable: don't echo it, it may hold a password.
        raise ConfigError(f"Invalid database URL (could not parse it); use {_EXAMPLES}.") from exc
    name = parsed.drivername
    backend, _, driver = name.partition("+")
    if name in _ALIASES:
        parsed = parsed.set(drivername=_ALIASES[name])
    elif backend in _ALIASES and name not in (POSTGRES, SQLITE):
        target = _ALIASES[backend]
        if driver == target.partition("+")[2]:
            parsed = parsed.set(drivername=target)  # postgres+asyncpg
        else:
            raise ConfigError(
                f"Database URL {redact(parsed)} uses the driver {driver!r}, which is not an "
                f"asyncio driver; use {target}:// instead."
            )
    elif name not in (POSTGRES, SQLITE):
        raise ConfigError(
            f"Unsupported database URL scheme {name!r} in {redact(parsed)}; use {_EXAMPLES}."
        )
    return parsed


def redact(url: str | URL) -> str:
    """Render a URL with its password masked, for messages and logs."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (sa_exc.ArgumentError, ValueError):
        return "<unparseable database URL>"


def create_engine(url: str | URL, **engine_kwargs: Any) -> AsyncEngine:
    """Create an async engine configured for the session store.

    Postgres runs in autocommit mode: every hot-path operation is a single statement, so no
    BEGIN/COMMIT round trips; multi-statement writes use `transaction_engine()`. SQLite gets
    foreign keys, WAL, and explicit BEGIN (IMMEDIATE for writers) instead of the sqlite3
    driver's implicit transactions. `engine_kwargs` override the defaults.
    """
    parsed = normalize_url(url)
    kwargs: dict[str, Any] = {
        "pool_pre_ping": True,
        "json_serializer": dumps_json,
    }
    if parsed.drivername == POSTGRES:
        kwargs["isolation_level"] = "AUTOCOMMIT"
        if "poolclass" not in engine_kwargs:
            kwargs.update(pool_size=10, max_overflow=20)
        connect_args = {**_POSTGRES_CONNECT_ARGS, **engine_kwargs.pop("connect_args", {})}
        kwargs["connect_args"] = connect_args
    elif is_memory_sqlite(parsed):
        # Each connection to ":memory:" is a new, empty database: one pooled connection,
        # kept for the engine's life, holds the data (callers queue for it).
        kwargs.update(poolclass=AsyncAdaptedQueuePool, pool_size=1, max_overflow=0)
        kwargs["connect_args"] = {"timeout": 30, **engine_kwargs.pop("connect_args", {})}
    else:
        _create_parent_dir(parsed)
        connect_args = {"timeout": 30, **engine_kwargs.pop("connect_args", {})}
        kwargs["connect_args"] = connect_args
    kwargs.update(engine_kwargs)
    engine = create_async_engine(parsed, **kwargs)
    if parsed.drivername == SQLITE:
        install_sqlite_hooks(engine)
    return engine


def open_engine(
    db_url: str | None, engine: AsyncEngine | None, engine_kwargs: dict[str, Any]
) -> tuple[AsyncEngine, bool]:
    """Return (engine, owned) for a service given a URL (we create and own the engine) or a
    caller's engine (shared: prepared for our statements, never disposed of by us).

    Raises:
        ConfigError: both or an unsupported dialect were given, or the URL is invalid.
    """
    if engine is not None and (db_url is not None or engine_kwargs):
        raise ConfigError("Pass either a database URL (with engine options) or an engine.")
    if engine is None:
        return create_engine(db_url or DEFAULT_DATABASE_URL, **engine_kwargs), True
    if engine.dialect.name == "sqlite":
        install_sqlite_hooks(engine)
    elif engine.dialect.name == "postgresql":
        # Our single-statement writes must not wait for a COMMIT that nobody sends.
        engine = engine.execution_options(isolation_level="AUTOCOMMIT")
    else:
        raise ConfigError(f"Unsupported database dialect {engine.dialect.name!r}.")
    return engine, False


def transaction_engine(engine: AsyncEngine) -> AsyncEngine:
    """Return a view of `engine` (same pool) whose connections run real write transactions."""
    if engine.dialect.name == "postgresql":
        return engine.execution_options(isolation_level="READ COMMITTED")
    return engine.execution_options(**{WRITE_OPTION: True})


def install_sqlite_hooks(engine: AsyncEngine) -> None:
    """Make SQLite connections enforce foreign keys and use explicit, predictable transactions.

    The sqlite3 driver's legacy mode begins transactions only before DML, so a read-then-write
    transaction could upgrade its lock late and fail with "database is locked"; writers here
    say BEGIN IMMEDIATE instead and wait for the lock (busy timeout) before reading anything.
    """
    sync_engine = engine.sync_engine
    if getattr(sync_engine, "_agent_service_hooks", False):
        return

    @event.listens_for(sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute("PRAGMA foreign_keys=ON")
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        finally:
            cursor.close()

    @event.listens_for(sync_engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        write = conn.get_execution_options().get(WRITE_OPTION, False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")

    sync_engine._agent_service_hooks = True  # type: ignore[attr-defined]


def dumps_json(value: Any) -> str:
    """Serialize state to JSON the way events are serialized (bytes as base64, etc.)."""
    return pydantic_core.to_json(value, bytes_mode="base64").decode()


def unavailable_error(exc: BaseException, url: str | URL) -> DatabaseUnavailableError | None:
    """Translate a driver failure into `DatabaseUnavailableError`, or None for other errors.

    Covers refused or dropped connections, a server shutting down or starting up, failed
    authentication, a missing database, and a schema that was never migrated. The message
    names the database (password masked); the public detail only says what went wrong.
    """
    where = redact(url)
    for cause in _chain(exc):
        if _is_missing_schema(cause):
            return DatabaseUnavailableError(
                f"The database {where} has no session tables (or an outdated schema); "
                "run `agent-service migrate` first.",
                public_detail="The database has no session tables (or an outdated schema); "
                "run `agent-service migrate` first.",
            )
    for cause in _chain(exc):
        failure = _connection_failure(cause)
        if failure is not None:
            kind, reason = failure
            return DatabaseUnavailableError(
                f"Database {where} is unavailable: {reason}. {_FIX_HINT}",
                public_detail=f"The database is unavailable: {kind}.",
            )
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return DatabaseUnavailableError(
            f"Database {where} dropped the connection: {_first_line(exc.orig)}. {_FIX_HINT}",
            public_detail="The database dropped the connection.",
        )
    return None


def discard_broken(connection: PoolProxiedConnection, pool: Pool, exc: BaseException) -> None:
    """Drop what a failed raw asyncpg call left unusable (nothing for other errors).

    For statements sent on the driver connection itself, which bypass SQLAlchemy's error
    handling, this does what SQLAlchemy would have done. A lost server (dropped socket,
    shutdown, connection errors) ends `connection` at once and marks every connection the pool
    opened before now as invalid: each is replaced at its next checkout, so one failed call is
    enough to recover from a restart even without `pool_pre_ping`. An interrupted call
    (cancelled, timed out) leaves the connection mid-statement: it alone is closed, gracefully,
    so that asyncpg first sends the server the cancel request for the statement.

    Call it in SQLAlchemy's greenlet context (where the pool's own calls run), before checking
    the connection in.
    """
    scope = _broken_scope(exc)
    if scope is None:
        return
    if scope == "pool":
        driver = connection.driver_connection
        if driver is not None:
            driver.terminate()  # the server is gone: nothing to wait for
        # Pool._invalidate is what SQLAlchemy calls on a disconnect it detects: it moves the
        # pool's invalidation time (once per generation of connections) and invalidates this
        # connection.
        invalidate_all = getattr(pool, "_invalidate", None)
        if invalidate_all is not None:
            invalidate_all(connection, exc)
            return
    connection.invalidate(exc)


def lost_server(exc: BaseException) -> bool:
    """Whether a failed raw asyncpg call means the server went away (see `discard_broken`)."""
    return _broken_scope(exc) == "pool"


def _broken_scope(exc: BaseException) -> str | None:
    """Say what a failed statement's `exc` leaves unusable.

    "pool" when the server went away, "connection" when only this connection is left in an
    unknown state, None when the connection is fine (e.g. a constraint violation).
    """
    import asyncpg

    if isinstance(
        exc,
        asyncpg.PostgresConnectionError
        | asyncpg.exceptions.AdminShutdownError
        | asyncpg.exceptions.CrashShutdownError
        | asyncpg.exceptions.CannotConnectNowError,
    ):
        return "pool"
    if isinstance(exc, TimeoutError):
        return "connection"
    if isinstance(exc, OSError):
        return "pool"
    if isinstance(exc, asyncpg.InterfaceError):
        message = str(exc)
        if "closed" in message:
            return "pool"
        if "in progress" in message:
            return "connection"  # left mid-statement
        return None  # bad arguments and the like: the connection is fine
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        # "cannot switch to state ...": the server's FATAL for a backend terminated while the
        # connection was idle arrived first. The others were most likely terminated too.
        return "pool"
    if isinstance(exc, asyncpg.ProtocolError):
        return "connection"
    if not isinstance(exc, Exception):
        return "connection"  # cancelled (or interrupted) in the middle of a statement
    return None


def _connection_failure(exc: BaseException) -> tuple[str, str] | None:
    """When `exc` means the database cannot be used right now, return what kind of failure
    it is (fixed text, fit for clients) and the driver's reason (may name host, user, db)."""
    import asyncpg

    if isinstance(exc, ConnectionRefusedError):
        return "connection refused", "connection refused"
    if isinstance(exc, OSError | TimeoutError):
        return "the server cannot be reached", _first_line(exc) or type(exc).__name__
    if isinstance(exc, asyncpg.exceptions.InvalidAuthorizationSpecificationError):
        return "authentication failed", f"authentication failed ({_first_line(exc)})"
    if isinstance(exc, asyncpg.exceptions.InvalidCatalogNameError):
        return "the database does not exist", f"{_first_line(exc)}; create it first"
    if isinstance(
        exc,
        asyncpg.PostgresConnectionError
        | asyncpg.exceptions.OperatorInterventionError
        | asyncpg.exceptions.InsufficientResourcesError,
    ):
        return "the server refused or dropped the connection", _first_line(exc)
    if isinstance(exc, asyncpg.InterfaceError) and "closed" in str(exc):
        return "the connection was closed", _first_line(exc)
    if isinstance(exc, asyncpg.exceptions.InternalClientError):
        return "the connection broke", f"the connection broke ({_first_line(exc)})"
    if type(exc).__module__ == "sqlite3" and any(m in str(exc) for m in _SQLITE_UNAVAILABLE):
        return "the database file cannot be used", _first_line(exc)
    return None


def _is_missing_schema(exc: BaseException) -> bool:
    import asyncpg

    if isinstance(exc, asyncpg.exceptions.UndefinedTableError):
        return True
    return type(exc).__module__ == "sqlite3" and "no such table" in str(exc)


def _chain(exc: BaseException) -> list[BaseException]:
    """Return `exc` and its causes (`orig`, `__cause__`, `__context__`), without cycles."""
    seen: list[BaseException] = []
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or any(current is s for s in seen):
            continue
        seen.append(current)
        todo.extend([getattr(current, "orig", None), current.__cause__, current.__context__])
    return seen


def _first_line(exc: BaseException | None) -> str:
    text = str(exc) if exc is not None else ""
    return text.strip().split("\n", 1)[0]


def is_memory_sqlite(url: URL) -> bool:
    """True for an in-memory SQLite URL (`sqlite://`, `sqlite:///:memory:`, `mode=memory`)."""
    if not url.drivername.startswith("sqlite"):
        return False
    database = url.database or ""
    return (
        database in ("", ":memory:") or ":memory:" in database or url.query.get("mode") == "memory"
    )


def _create_parent_dir(url: URL) -> None:
    database = url.database or ""
    if database.startswith("file:"):
        return  # a URI filename: leave it to SQLite
    parent = Path(database).expanduser().parent
    try:
        parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigError(
            f"Cannot create the directory {parent} for the SQLite database {redact(url)}: "
            f"{exc.strerror}; create it or choose another path."
        ) from exc
