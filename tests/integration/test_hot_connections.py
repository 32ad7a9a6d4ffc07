"""HotConnections: hot-path statements reuse the last connection instead of a pool checkout,
while the pool stays the owner of every connection (idle ones go back, failures are handled)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import asyncpg
import pytest
from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from app.sessions._engine import create_engine
from app.sessions._hot_connections import HotConnections
from tests.integration.helpers import terminate_other_backends

pytestmark = pytest.mark.postgres


@pytest.fixture
async def engine(pg_db_url: str) -> AsyncIterator[AsyncEngine]:
    engine = create_engine(pg_db_url, pool_pre_ping=False, pool_size=6, max_overflow=2)
    yield engine
    await engine.dispose()


def count_checkouts(engine: AsyncEngine) -> list[int]:
    counter = [0]

    @event.listens_for(engine.sync_engine, "checkout")
    def _checkout(*_args: Any) -> None:
        counter[0] += 1

    return counter


def pool_of(engine: AsyncEngine) -> QueuePool:
    pool = engine.sync_engine.pool
    assert isinstance(pool, QueuePool)
    return pool


async def run(hot: HotConnections, query: str = "SELECT 1") -> Any:
    connection = await hot.acquire()
    try:
        value = await connection.driver_connection.fetchval(query)  # type: ignore[union-attr]
    except BaseException as exc:
        await hot.discard(connection, exc)
        raise
    await hot.release(connection)
    return value


async def test_statements_reuse_the_last_connection_without_a_checkout(
    engine: AsyncEngine,
) -> None:
    hot = HotConnections(engine)
    assert hot.enabled and hot.max_size == 3
    big = create_engine(engine.url, pool_pre_ping=False, pool_size=30)
    assert HotConnections(big).max_size == 25  # 5 reserved
    await big.dispose()
    checkouts = count_checkouts(engine)
    for _ in range(20):
        assert await run(hot) == 1
    assert checkouts[0] == 1
    assert len(hot) == 1 and pool_of(engine).checkedout() == 1
    await hot.close()
    assert len(hot) == 0 and pool_of(engine).checkedout() == 0
    # A statement still running when the service closes checks its connection back in.
    assert await run(hot) == 1
    assert len(hot) == 0 and pool_of(engine).checkedout() == 0


async def test_concurrent_statements_keep_at_most_the_pool_size(engine: AsyncEngine) -> None:
    hot = HotConnections(engine)
    await asyncio.gather(*(run(hot, "SELECT pg_sleep(0.05)") for _ in range(8)))
    # Eight ran at once (pool 6 + overflow 2); half of this small pool stays hot, the rest
    # went back, so other users of the pool (artifacts) always find connections.
    assert len(hot) == 3 and pool_of(engine).checkedout() == 3
    await hot.close()
    assert pool_of(engine).checkedout() == 0


async def test_connections_idle_too_long_go_back_to_the_pool(engine: AsyncEngine) -> None:
    hot = HotConnections(engine, idle_seconds=0.05)
    await asyncio.gather(*(run(hot, "SELECT pg_sleep(0.02)") for _ in range(3)))
    assert len(hot) == 3
    await asyncio.sleep(0.1)
    checkouts = count_checkouts(engine)
    assert await run(hot) == 1
    # All three were idle: returned to the pool, and the statement checked one out again.
    assert checkouts[0] == 1 and len(hot) == 1 and pool_of(engine).checkedout() == 1
    await hot.close()


async def test_not_used_when_the_pool_pre_pings(pg_db_url: str) -> None:
    engine = create_engine(pg_db_url)  # pre-ping on: every checkout must keep its round trip
    try:
        hot = HotConnections(engine)
        assert not hot.enabled
        checkouts = count_checkouts(engine)
        for _ in range(3):
            assert await run(hot) == 1
        assert checkouts[0] == 3 and len(hot) == 0 and pool_of(engine).checkedout() == 0
    finally:
        await engine.dispose()


async def test_a_failed_statement_keeps_a_healthy_connection(engine: AsyncEngine) -> None:
    hot = HotConnections(engine)
    assert await run(hot) == 1
    with pytest.raises(asyncpg.DivisionByZeroError):
        await run(hot, "SELECT 1/0")
    # The connection is fine after a statement error: it went back to the pool, still valid.
    assert len(hot) == 0 and pool_of(engine).checkedout() == 0 and pool_of(engine).checkedin() == 1
    assert await run(hot) == 1
    await hot.close()


async def test_connections_the_server_closed_are_replaced_not_used(
    engine: AsyncEngine,
) -> None:
    hot = HotConnections(engine)
    await asyncio.gather(*(run(hot, "SELECT pg_sleep(0.02)") for _ in range(3)))
    assert len(hot) == 3
    assert await terminate_other_backends(engine.url) == 3
    await asyncio.sleep(0.2)  # the loop sees each socket close
    # Every statement gets a live connection: the closed ones are invalidated, not used.
    for _ in range(3):
        assert await run(hot) == 1
    assert len(hot) == 1 and pool_of(engine).checkedout() == 1
    await hot.close()


async def test_a_lost_server_returns_every_hot_connection(engine: AsyncEngine) -> None:
    hot = HotConnections(engine)
    await asyncio.gather(*(run(hot, "SELECT pg_sleep(0.02)") for _ in range(3)))
    assert len(hot) == 3
    connection = await hot.acquire()
    await hot.discard(connection, ConnectionResetError("server gone"))
    # The failure sends the other hot connections back to the pool, which it invalidated:
    # every later statement gets a freshly opened connection.
    assert len(hot) == 0 and pool_of(engine).checkedout() == 0
    checkouts = count_checkouts(engine)
    connects = [0]

    @event.listens_for(engine.sync_engine, "connect")
    def _connect(*_args: Any) -> None:
        connects[0] += 1

    for _ in range(3):
        assert await run(hot) == 1
    assert checkouts[0] == 1 and connects[0] == 1
    await hot.close()


async def test_a_cancelled_statement_does_not_come_back(engine: AsyncEngine) -> None:
    hot = HotConnections(engine)
    task = asyncio.create_task(run(hot, "SELECT pg_sleep(5)"))
    await asyncio.sleep(0.1)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    # Left mid-statement: closed, not kept hot; the pool hands out a working one.
    assert len(hot) == 0 and pool_of(engine).checkedout() == 0
    assert await run(hot) == 1
    await hot.close()
