"""Fixtures for in-process route tests: the app on an in-memory store, driven by httpx.

`httpx.ASGITransport` buffers whole response bodies, so these tests see complete SSE
streams; timing-sensitive streaming (disconnects, keep-alives) is tested in tests/e2e.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.server.app import create_app
from app.server.settings import Settings

AGENTS_FIXTURE = Path(__file__).resolve().parent.parent / "e2e" / "agents_fixture"

ClientFactory = Callable[..., AbstractAsyncContextManager[httpx.AsyncClient]]


@asynccontextmanager
async def serve_in_process(**settings: Any) -> AsyncIterator[httpx.AsyncClient]:
    """Run the app's lifespan and yield a client bound to it."""
    values: dict[str, Any] = {"database_url": "memory://", "agents_dir": AGENTS_FIXTURE}
    values.update(settings)
    app = create_app(Settings(**values))
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            client.app = app  # type: ignore[attr-defined]
            yield client


@pytest.fixture
def make_client() -> ClientFactory:
    """Return a factory of clients for apps with custom settings."""
    return serve_in_process


@pytest.fixture
async def client() -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app serving tests/e2e/agents_fixture on an in-memory store."""
    async with serve_in_process() as c:
        yield c
