"""Pool connections kept checked out between hot-path statements, so most skip the pool.

A checkout from SQLAlchemy's pool and the checkin after it (in a greenlet, as the pool needs)
cost about 33 us of CPU here, more than the ~27 us asyncpg spends on a whole hot-path statement.
A chat run makes three such statements. `HotConnections` keeps the connections those statements
just used, checked out, and hands the most recent one to the next statement: a list pop instead
of a checkout. The pool remains the only source and owner of connections:

- part of the pool is never kept (see `RESERVED`); a connection unused for `idle_seconds`
  goes back to the pool at the next statement;
- a statement whose failure leaves the connection or the server unusable goes through
  `discard_broken`, and a lost server sends every hot connection back to the pool, where the
  invalidation `discard_broken` recorded replaces them at their next checkout;
- a hot connection the server has closed meanwhile is invalidated instead of used;
- it is only used when the pool does not pre-ping: with pre-ping every checkout is a round trip
  that the caller asked for, and skipping it would silently drop that guarantee.
"""

from __future__ import annotations

import time
from collections import deque
from typing import Any

from sqlalchemy.engine.interfaces import PoolProxiedConnection
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool
from sqlalchemy.util import greenlet_spawn

from app.sessions._engine import discard_broken, lost_server

IDLE_SECONDS = 1.0
"""A hot connection unused for longer than this goes back to the pool."""

RESERVED = 5
"""Pool connections never kept hot (fewer in pools under 10), for the pool's other users."""


class HotConnections:
    """Recently used pool connections, reused without a pool checkout (see the module doc)."""

    def __init__(self, engine: AsyncEngine, *, idle_seconds: float = IDLE_SECONDS) -> None:
        pool = engine.sync_engine.pool
        self._sync_engine = engine.sync_engine
        self._pool = pool
        self._idle_seconds = idle_seconds
        # Private pool attributes, read defensively: when in doubt, do not keep connections.
        pre_ping = getattr(pool, "_pre_ping", True)
        recycle = getattr(pool, "_recycle", 0)
        size = pool.size() if isinstance(pool, QueuePool) else 0
        self.enabled = size > 0 and not pre_ping and recycle < 0
        # What is kept hot stays checked out even while the session store is idle, so part of
        # the pool (half, at most RESERVED) is left to its other users (artifacts, listings).
        self.max_size = max(1, size - min(size // 2, RESERVED)) if self.enabled else 0
        self._hot: deque[tuple[PoolProxiedConnection, float]] = deque()

    def __len__(self) -> int:
        return len(self._hot)

    async def acquire(self) -> PoolProxiedConnection:
        """The most recently used hot connection, or one checked out of the pool."""
        hot = self._hot
        if hot:
            now = time.monotonic()
            if now - hot[0][1] > self._idle_seconds:
                await self._check_in_idle(now)
            while hot:
                connection = hot.pop()[0]
                driver = connection.driver_connection
                if driver is not None and not driver.is_closed():
                    return connection
                # The server closed it while it waited (restart, idle timeout): replace it.
                await greenlet_spawn(connection.invalidate)
        return await greenlet_spawn(self._sync_engine.raw_connection)

    async def release(self, connection: PoolProxiedConnection) -> None:
        """Keep a connection whose statement succeeded for the next statement."""
        if self.enabled and len(self._hot) < self.max_size and connection.is_valid:
            self._hot.append((connection, time.monotonic()))
        else:
            await greenlet_spawn(connection.close)

    async def discard(self, connection: PoolProxiedConnection, exc: BaseException) -> None:
        """Handle a failed statement's connection; on a lost server, return every hot one."""
        await greenlet_spawn(self._discard, connection, exc)

    async def close(self) -> None:
        """Check every hot connection back in, and keep none from now on (service closed)."""
        self.enabled = False
        if self._hot:
            await greenlet_spawn(self._check_in_all)

    def _discard(self, connection: PoolProxiedConnection, exc: BaseException) -> None:
        try:
            discard_broken(connection, self._pool, exc)
        finally:
            connection.close()
        if lost_server(exc):
            self._check_in_all()

    async def _check_in_idle(self, now: float) -> None:
        hot = self._hot
        idle: list[Any] = []
        while hot and now - hot[0][1] > self._idle_seconds:
            idle.append(hot.popleft()[0])
        await greenlet_spawn(_check_in, idle)

    def _check_in_all(self) -> None:
        connections = [connection for connection, _ in self._hot]
        self._hot.clear()
        _check_in(connections)


def _check_in(connections: list[Any]) -> None:
    for connection in connections:
        connection.close()
