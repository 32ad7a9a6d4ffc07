"""API keys: created by the CLI, stored hashed in the database, verified on each request.

A key reads `ask_<id>_<secret>`: `id` (12 hex digits) is public and is the row's primary key,
`secret` (43 URL-safe characters, 256 bits) is only ever stored as its SHA-256. A random
256-bit secret needs no slow password hash: nothing can be guessed from its digest.

Verified keys are cached in process for `cache_seconds` (AGENT_SERVICE_API_KEY_CACHE_SECONDS),
so the hot path does no database round trip; a revoked key therefore keeps working for at
most that long on each process. Expiry is checked on every request, cached or not.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncEngine

from app.server.security.principal import Principal
from app.sessions._engine import unavailable_error

KEY_PREFIX = "ask_"
_KEY = re.compile(r"^ask_([0-9a-f]{12})_([A-Za-z0-9_-]{43})$")
_DURATION = re.compile(r"^(\d{1,6})([smhd])$")
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
MAX_CACHED_KEYS = 10_000

metadata = sa.MetaData()
api_keys = sa.Table(
    "api_keys",
    metadata,
    sa.Column("key_id", sa.Text, primary_key=True),
    sa.Column("secret_sha256", sa.Text, nullable=False),
    sa.Column("user_id", sa.Text, nullable=False),
    sa.Column("admin", sa.Boolean, nullable=False),
    sa.Column("apps", sa.JSON, nullable=True),
    sa.Column("created_at", sa.Double, nullable=False),
    sa.Column("expires_at", sa.Double, nullable=True),
    sa.Column("revoked_at", sa.Double, nullable=True),
)


@dataclass(frozen=True, slots=True)
class ApiKeyInfo:
    """A stored key as `keys list` shows it (never its secret)."""

    key_id: str
    user_id: str
    admin: bool
    apps: tuple[str, ...] | None
    created_at: float
    expires_at: float | None
    revoked_at: float | None


@dataclass(frozen=True, slots=True)
class _Cached:
    principal: Principal
    expires_at: float | None
    """The key's own expiry (epoch seconds)."""
    trusted_until: float
    """Monotonic time until which the database is not asked again."""


def parse_duration(text: str) -> timedelta:
    """Parse `30d`, `12h`, `15m` or `90s`.

    Raises:
        ValueError: any other form, or zero.
    """
    match = _DURATION.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"invalid duration {text!r}: expected e.g. 30d, 12h, 15m or 90s")
    return timedelta(seconds=int(match.group(1)) * _UNITS[match.group(2)])


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def looks_like_api_key(credential: str) -> bool:
    """Return whether a credential has the shape of one of our keys (vs. a JWT)."""
    return credential.startswith(KEY_PREFIX)


class ApiKeyStore:
    """Create, list, revoke and verify API keys in the `api_keys` table."""

    def __init__(self, engine: AsyncEngine, cache_seconds: float = 10.0) -> None:
        self._engine = engine
        self._cache_seconds = cache_seconds
        self._cache: dict[str, _Cached] = {}

    async def create(
        self,
        user_id: str,
        *,
        admin: bool = False,
        apps: Sequence[str] | None = None,
        expires_in: timedelta | None = None,
    ) -> tuple[str, ApiKeyInfo]:
        """Store a new key; return it in clear (shown once) with its stored record."""
        key_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        now = time.time()
        info = ApiKeyInfo(
            key_id=key_id,
            user_id=user_id,
            admin=admin,
            apps=tuple(sorted(set(apps))) if apps else None,
            created_at=now,
            expires_at=now + expires_in.total_seconds() if expires_in else None,
            revoked_at=None,
        )
        async with self._engine.begin() as conn:
            await conn.execute(
                api_keys.insert().values(
                    key_id=key_id,
                    secret_sha256=_digest(secret),
                    user_id=user_id,
                    admin=admin,
                    apps=list(info.apps) if info.apps else None,
                    created_at=now,
                    expires_at=info.expires_at,
                )
            )
        return f"{KEY_PREFIX}{key_id}_{secret}", info

    async def list(self) -> list[ApiKeyInfo]:
        """Return every key, oldest first."""
        async with self._engine.connect() as conn:
            rows = await conn.execute(sa.select(api_keys).order_by(api_keys.c.created_at))
            return [_info(row) for row in rows.mappings()]

    async def revoke(self, key_id: str) -> bool:
        """Revoke a key; return False when no such (unrevoked) key exists."""
        async with self._engine.begin() as conn:
            result = await conn.execute(
                api_keys.update()
                .where(api_keys.c.key_id == key_id, api_keys.c.revoked_at.is_(None))
                .values(revoked_at=time.time())
            )
        self._cache.clear()  # this process at once; others within cache_seconds
        return result.rowcount > 0

    async def verify(self, credential: str) -> Principal | None:
        """Return the key's caller, or None for an unknown, wrong, revoked or expired key."""
        match = _KEY.match(credential)
        if match is None:
            return None
        digest = _digest(match.group(2))
        now = time.time()
        cached = self._cache.get(digest)
        if cached is not None and cached.trusted_until > time.monotonic():
            return _unexpired(cached, now)
        query = sa.select(api_keys).where(api_keys.c.key_id == match.group(1))
        try:
            async with self._engine.connect() as conn:
                row = (await conn.execute(query)).mappings().first()
        except Exception as exc:
            translated = unavailable_error(exc, self._engine.url)
            if translated is None:
                raise
            raise translated from exc
        if row is None or row["revoked_at"] is not None:
            self._cache.pop(digest, None)
            return None
        if not hmac.compare_digest(row["secret_sha256"], digest):
            return None
        apps = row["apps"]
        entry = _Cached(
            principal=Principal(
                user_id=row["user_id"],
                admin=bool(row["admin"]),
                apps=frozenset(apps) if apps else None,
            ),
            expires_at=row["expires_at"],
            trusted_until=time.monotonic() + self._cache_seconds,
        )
        if len(self._cache) >= MAX_CACHED_KEYS:
            self._cache.clear()
        self._cache[digest] = entry
        return _unexpired(entry, now)


def _unexpired(entry: _Cached, now: float) -> Principal | None:
    if entry.expires_at is not None and entry.expires_at <= now:
        return None
    return entry.principal


def _info(row: sa.RowMapping) -> ApiKeyInfo:
    apps = row["apps"]
    return ApiKeyInfo(
        key_id=row["key_id"],
        user_id=row["user_id"],
        admin=bool(row["admin"]),
        apps=tuple(apps) if apps else None,
        created_at=row["created_at"],
        expires_at=row["expires_at"],
        revoked_at=row["revoked_at"],
    )


def describe(info: ApiKeyInfo) -> str:
    """One line of `keys list`."""

    def when(ts: float | None) -> str:
        return "-" if ts is None else datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")

    return "\t".join(
        [
            info.key_id,
            info.user_id,
            "admin" if info.admin else "user",
            ",".join(info.apps) if info.apps else "*",
            when(info.created_at),
            when(info.expires_at),
            "revoked " + when(info.revoked_at) if info.revoked_at else "active",
        ]
    )
