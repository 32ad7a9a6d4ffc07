"""Helpers for the Postgres fault tests: talk to the server behind the service's back."""

from __future__ import annotations

import asyncpg
from sqlalchemy.engine import URL, make_url


def dsn(url: str | URL) -> str:
    """The plain asyncpg DSN of a SQLAlchemy URL."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def terminate_other_backends(url: str | URL) -> int:
    """Kill every other connection to the URL's database; return how many there were."""
    admin = await asyncpg.connect(dsn(url))
    try:
        killed = await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await admin.close()
    return int(killed)
