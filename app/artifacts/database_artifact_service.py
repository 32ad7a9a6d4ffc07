"""DatabaseArtifactService: artifact versions in the session store's database.

Behaves like `InMemoryArtifactService`, durably: versions survive restarts and are shared by
every worker and replica using the database. Each version is one row of the `artifacts`
table (created by the alembic migration `0002`), its bytes in a `bytea` (Postgres) or `BLOB`
(SQLite) column.

Version numbers are allocated by the INSERT itself (`MAX(version) + 1` over the artifact's
rows). Two concurrent saves of one artifact may compute the same number; the primary key
lets only one of them in and the other retries, so versions stay 0-based and dense.

One instance belongs to one event loop (its connections do).
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import sqlalchemy as sa
from google.genai import types
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncEngine

from app.artifacts.base_artifact_service import (
    USER_SCOPE_PREFIX,
    ArtifactVersion,
    BaseArtifactService,
    is_user_scoped,
)
from app.errors import (
    AgentServiceError,
    ConfigError,
    ConflictError,
    InvalidRequestError,
    PayloadTooLargeError,
)
from app.ids import check_artifact_name
from app.sessions._engine import open_engine, transaction_engine, unavailable_error

logger = logging.getLogger(__name__)

DEFAULT_MAX_BYTES = 16 * 1024 * 1024
"""Largest artifact version accepted by default (16 MiB of data plus text)."""

USER_SCOPE_SESSION_ID = ""
"""`session_id` of `user:` artifacts (and of artifacts saved with no session)."""

# Each failed attempt means another save of the same artifact succeeded, so this bounds only
# pathological contention (that many saves of one artifact at the same instant).
_MAX_SAVE_ATTEMPTS = 100
_MAX_VERSION = 2**63 - 1  # BIGINT

# Mirrors migrations/versions/0002_artifacts.py; used to build queries, never to create tables.
_Key = sa.Text().with_variant(sa.Text(collation="C"), "postgresql")
_metadata = sa.MetaData()
artifacts = sa.Table(
    "artifacts",
    _metadata,
    sa.Column("app_name", _Key, primary_key=True),
    sa.Column("user_id", _Key, primary_key=True),
    sa.Column("session_id", _Key, primary_key=True),
    sa.Column("filename", _Key, primary_key=True),
    sa.Column("version", sa.BigInteger, primary_key=True),
    sa.Column("mime_type", sa.Text),
    sa.Column("text", sa.Text),
    sa.Column("data", sa.LargeBinary),
    sa.Column("size_bytes", sa.BigInteger, nullable=False),
    sa.Column("custom_metadata", sa.JSON().with_variant(JSONB(), "postgresql"), nullable=False),
    sa.Column("create_time", sa.Double, nullable=False),
)
_a = artifacts.c


class DatabaseArtifactService(BaseArtifactService):
    """Stores artifact versions in a SQL database through SQLAlchemy's asyncio engine.

    Args:
        db_url: as for `DatabaseSessionService` (`postgresql+asyncpg://...`,
            `sqlite+aiosqlite:///path.db`, plain schemes rewritten). Default: the SQLite file
            under `./data/` that sessions use.
        engine: use this engine instead of creating one, e.g. `DatabaseSessionService.engine`
            to share its connection pool; it is not disposed by `close()`.
        max_bytes: the largest version `save_artifact` accepts (inline data plus UTF-8 text).
        **engine_kwargs: passed to `create_async_engine` (e.g. `pool_size`).

    Raises:
        ConfigError: the URL is invalid, names an unsupported driver, or `max_bytes` < 1.
    """

    TABLES: ClassVar[tuple[str, ...]] = (artifacts.name,)
    """The tables this service reads and writes (for readiness checks)."""

    def __init__(
        self,
        db_url: str | None = None,
        *,
        engine: AsyncEngine | None = None,
        max_bytes: int = DEFAULT_MAX_BYTES,
        **engine_kwargs: Any,
    ) -> None:
        if max_bytes < 1:
            raise ConfigError("max_bytes must be 1 or more.")
        engine, self._owns_engine = open_engine(db_url, engine, engine_kwargs)
        self._engine = engine
        # Writes: Postgres runs single autocommit statements; SQLite needs a real transaction
        # (BEGIN IMMEDIATE, so concurrent writers queue for the lock instead of failing).
        self._write_engine = (
            engine if engine.dialect.name == "postgresql" else transaction_engine(engine)
        )
        self._max_bytes = max_bytes

    @property
    def engine(self) -> AsyncEngine:
        """The engine in use."""
        return self._engine

    @property
    def max_bytes(self) -> int:
        """The largest artifact version accepted, in bytes."""
        return self._max_bytes

    async def close(self) -> None:
        """Close the connections (of an engine we created)."""
        if self._owns_engine:
            await self._engine.dispose()

    async def save_artifact(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str | None,
        filename: str,
        artifact: types.Part,
        custom_metadata: dict[str, Any] | None = None,
    ) -> int:
        """Store a new version; see `BaseArtifactService.save_artifact`.

        Raises:
            ValueError: the Part carries neither inline_data nor text, or its text holds a
                NUL character, or the filename breaks `app.ids` rules (an `InvalidRequestError`).
            PayloadTooLargeError: the version is larger than `max_bytes`.
        """
        check_artifact_name(filename)
        if artifact.inline_data is None and artifact.text is None:
            raise ValueError("An artifact must carry inline_data or text.")
        blob = artifact.inline_data
        text = artifact.text
        if text is not None and "\x00" in text:
            # Postgres text cannot hold U+0000; refuse it on SQLite too, so both behave alike.
            raise InvalidRequestError(
                f"Artifact {filename!r}: text cannot contain NUL characters; save it as "
                "inline_data instead."
            )
        text_bytes = len(text.encode()) if text is not None else 0
        data = blob.data if blob is not None else None
        # Metadata size as InMemoryArtifactService reports it: the data, else the text.
        size = len(data or b"") if blob is not None else text_bytes
        stored = len(data or b"") + text_bytes
        if stored > self._max_bytes:
            raise PayloadTooLargeError(
                f"Artifact {filename!r} is {stored} bytes; the limit is {self._max_bytes} "
                "bytes per version."
            )
        key = _key(app_name, user_id, session_id, filename)
        next_version = (
            sa.select(sa.func.coalesce(sa.func.max(_a.version) + 1, 0))
            .where(*_matches(key))
            .scalar_subquery()
        )
        stmt = (
            sa.insert(artifacts)
            .values(
                app_name=key[0],
                user_id=key[1],
                session_id=key[2],
                filename=key[3],
                version=next_version,
                mime_type=blob.mime_type if blob is not None else None,
                text=text,
                data=data,
                size_bytes=size,
                custom_metadata=dict(custom_metadata or {}),
                create_time=time.time(),
            )
            .returning(_a.version)
        )
        for attempt in range(1, _MAX_SAVE_ATTEMPTS + 1):
            try:
                async with self._database(), self._write_engine.begin() as conn:
                    version: int = (await conn.execute(stmt)).scalar_one()
                    return version
            except sa_exc.IntegrityError:
                # A concurrent save took the number we computed; the next attempt sees it.
                logger.debug(
                    "artifact version taken, retrying app=%s attempt=%d", app_name, attempt
                )
        raise ConflictError(
            f"Could not allocate a version of artifact {filename!r}: {_MAX_SAVE_ATTEMPTS} "
            "concurrent saves of it won the race first; retry."
        )

    async def load_artifact(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str | None,
        filename: str,
        version: int | None = None,
    ) -> types.Part | None:
        """Return a version or None; see `BaseArtifactService.load_artifact`."""
        key = _key(app_name, user_id, session_id, filename)
        stmt = sa.select(_a.mime_type, _a.text, _a.data).where(*_matches(key))
        if version is None:
            stmt = stmt.order_by(_a.version.desc()).limit(1)
        elif 0 <= version <= _MAX_VERSION:
            stmt = stmt.where(_a.version == version)
        else:
            return None
        async with self._database(), self._engine.connect() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        if row is None:
            return None
        return _part(row.mime_type, row.text, row.data)

    async def list_artifact_keys(
        self, *, app_name: str, user_id: str, session_id: str | None
    ) -> list[str]:
        """Return artifact names; see `BaseArtifactService.list_artifact_keys`."""
        sid = USER_SCOPE_SESSION_ID if session_id is None else session_id
        # substr, not LIKE: SQLite's LIKE ignores case, and `USER:x` is not user-scoped.
        user_scoped = sa.func.substr(_a.filename, 1, len(USER_SCOPE_PREFIX)) == USER_SCOPE_PREFIX
        stmt = (
            sa.select(_a.filename)
            .distinct()
            .where(
                _a.app_name == app_name,
                _a.user_id == user_id,
                sa.or_(
                    _a.session_id == sid,
                    sa.and_(_a.session_id == USER_SCOPE_SESSION_ID, user_scoped),
                ),
            )
        )
        async with self._database(), self._engine.connect() as conn:
            names = (await conn.execute(stmt)).scalars().all()
        return sorted(names)  # Python's order, whatever the database's collation

    async def delete_artifact(
        self, *, app_name: str, user_id: str, session_id: str | None, filename: str
    ) -> None:
        """Delete every version of the artifact."""
        key = _key(app_name, user_id, session_id, filename)
        async with self._database(), self._write_engine.begin() as conn:
            await conn.execute(sa.delete(artifacts).where(*_matches(key)))

    async def list_versions(
        self, *, app_name: str, user_id: str, session_id: str | None, filename: str
    ) -> list[int]:
        """Return version numbers; see `BaseArtifactService.list_versions`."""
        key = _key(app_name, user_id, session_id, filename)
        stmt = sa.select(_a.version).where(*_matches(key)).order_by(_a.version)
        async with self._database(), self._engine.connect() as conn:
            return list((await conn.execute(stmt)).scalars().all())

    async def list_artifact_versions(
        self, *, app_name: str, user_id: str, session_id: str | None, filename: str
    ) -> list[ArtifactVersion]:
        """Return version metadata; see `BaseArtifactService.list_artifact_versions`."""
        key = _key(app_name, user_id, session_id, filename)
        stmt = (
            sa.select(_a.version, _a.mime_type, _a.create_time, _a.size_bytes, _a.custom_metadata)
            .where(*_matches(key))
            .order_by(_a.version)
        )
        async with self._database(), self._engine.connect() as conn:
            rows = (await conn.execute(stmt)).all()
        return [
            ArtifactVersion(
                version=row.version,
                mime_type=row.mime_type,
                create_time=row.create_time,
                size_bytes=row.size_bytes,
                custom_metadata=row.custom_metadata or {},
            )
            for row in rows
        ]

    @asynccontextmanager
    async def _database(self) -> AsyncIterator[None]:
        """Translate connection failures into DatabaseUnavailableError."""
        try:
            yield
        except AgentServiceError:
            raise
        except Exception as exc:
            translated = unavailable_error(exc, self._engine.url)
            if translated is None:
                raise
            raise translated from exc


_ArtifactKey = tuple[str, str, str, str]
"""(app_name, user_id, session_id or '', filename)"""


def _key(app_name: str, user_id: str, session_id: str | None, filename: str) -> _ArtifactKey:
    """Return the row key: `user:` artifacts (and session-less ones) use session_id ''."""
    if is_user_scoped(filename) or session_id is None:
        return (app_name, user_id, USER_SCOPE_SESSION_ID, filename)
    return (app_name, user_id, session_id, filename)


def _matches(key: _ArtifactKey) -> list[sa.ColumnElement[bool]]:
    """Return the WHERE clauses selecting every version of one artifact."""
    app_name, user_id, session_id, filename = key
    return [
        _a.app_name == app_name,
        _a.user_id == user_id,
        _a.session_id == session_id,
        _a.filename == filename,
    ]


def _part(mime_type: str | None, text: str | None, data: bytes | None) -> types.Part:
    """Rebuild the saved Part: text, inline data, or both."""
    if text is None:
        return types.Part(inline_data=types.Blob(mime_type=mime_type, data=data))
    if mime_type is None and data is None:
        return types.Part(text=text)
    return types.Part(text=text, inline_data=types.Blob(mime_type=mime_type, data=data))
