"""Session-service fixtures: one store per test, on every backend."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from app.sessions import BaseSessionService

from .session_stores import BACKENDS, DATABASE_BACKENDS, Store, open_store


@pytest.fixture(params=BACKENDS)
async def store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """An empty, migrated store on each backend: memory, sqlite, postgres."""
    opened = await open_store(request)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture(params=DATABASE_BACKENDS)
async def db_store(request: pytest.FixtureRequest) -> AsyncIterator[Store]:
    """An empty, migrated store on each database backend: sqlite, postgres."""
    opened = await open_store(request)
    try:
        yield opened
    finally:
        await opened.close()


@pytest.fixture
def session_service(store: Store) -> BaseSessionService:
    """The store's first service."""
    return store.service
