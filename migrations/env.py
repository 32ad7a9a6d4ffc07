"""Alembic environment for the agent-service session store (Postgres and SQLite).

Run through `agent-service migrate` or `app.sessions.migration.upgrade()`, which hand over an
open connection in `config.attributes["connection"]`. Plain `alembic` works too, with
`-x url=DATABASE_URL` (or `AGENT_SERVICE_DATABASE_URL`, or the default SQLite file).
"""

from __future__ import annotations

import asyncio
import os
from logging.config import fileConfig

import sqlalchemy as sa
from alembic import context
from sqlalchemy import pool

from app.sessions._engine import DEFAULT_DATABASE_URL, create_engine, transaction_engine

config = context.config

if config.config_file_name is not None:
    fileConfig(config.config_file_name)

# Concurrent `migrate` runs (several replicas starting at once) take turns on this lock.
_MIGRATION_LOCK_KEY = 0x6167656E74  # "agent"


def _database_url() -> str:
    return (
        context.get_x_argument(as_dictionary=True).get("url")
        or config.attributes.get("url")
        or os.environ.get("AGENT_SERVICE_DATABASE_URL")
        or DEFAULT_DATABASE_URL
    )


def run_migrations_offline() -> None:
    """Emit the SQL to stdout instead of running it (`alembic upgrade --sql`)."""
    context.configure(
        url=_database_url(),
        target_metadata=None,
        literal_binds=True,
        dialect_opts={"paramstyle": "named"},
    )
    with context.begin_transaction():
        context.run_migrations()


def do_run_migrations(connection: sa.Connection) -> None:
    """Run the pending migrations on `connection`, in one transaction."""
    context.configure(connection=connection, target_metadata=None, render_as_batch=True)
    with context.begin_transaction():
        if connection.dialect.name == "postgresql":
            connection.execute(
                sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": _MIGRATION_LOCK_KEY}
            )
        context.run_migrations()


async def run_async_migrations() -> None:
    """Connect with our own engine (plain `alembic` use) and migrate."""
    engine = create_engine(_database_url(), poolclass=pool.NullPool)
    try:
        async with transaction_engine(engine).connect() as connection:
            await connection.run_sync(do_run_migrations)
    finally:
        await engine.dispose()


def run_migrations_online() -> None:
    """Migrate through the connection we were given, or one we open ourselves."""
    connection = config.attributes.get("connection")
    if connection is not None:
        do_run_migrations(connection)
    else:
        asyncio.run(run_async_migrations())


if context.is_offline_mode():
    run_migrations_offline()
else:
    run_migrations_online()
