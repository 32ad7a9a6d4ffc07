"""Helpers for the session-service fixtures: a store per backend and its services."""

from __future__ import annotations

from typing import Any

import pytest

from app.sessions import BaseSessionService, DatabaseSessionService, InMemorySessionService


class Store:
    """One empty session store of a given backend, and the services opened on it."""

    def __init__(self, backend: str, url: str | None) -> None:
        self.backend = backend
        self.url = url
        self._services: list[BaseSessionService] = []
        self.service = self.replica()

    def replica(self, **kwargs: Any) -> BaseSessionService:
        """Return another service on the same data, as a second server process would have.

        In memory there is only one process: the same service is returned.
        """
        if self.url is None:
            if not self._services:
                self._services.append(InMemorySessionService())
            return self._services[0]
        service = DatabaseSessionService(self.url, **kwargs)
        self._services.append(service)
        return service

    async def close(self) -> None:
        """Close every service opened on the store."""
        for service in self._services:
            await service.close()


BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]
DATABASE_BACKENDS = BACKENDS[1:]


async def open_store(request: pytest.FixtureRequest) -> Store:
    """Build a `Store` for `request.param`; Postgres is started only when asked for."""
    backend = request.param
    if backend == "memory":
        return Store(backend, None)
    fixture = "pg_db_url" if backend == "postgres" else "sqlite_db_url"
    return Store(backend, request.getfixturevalue(fixture))
