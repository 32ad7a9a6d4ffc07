"""The `agent-service` command line: one function per subcommand.

    agent-service migrate [--database-url URL] [--check]
    agent-service serve [--host H] [--port P] [--workers N] [--reload]
    agent-service openapi [--out openapi/openapi.json]
    agent-service run APP "message" [--user U] [--session S] [--agents-dir D] [--db]
    agent-service devui fetch [--version V] [--cache-dir D]

Exit codes: 0 success, 1 "not done" (e.g. `migrate --check` on a database behind head),
2 bad usage, bad configuration, or an unreachable database.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from collections.abc import Callable, Sequence

from app.errors import ConfigError, DatabaseUnavailableError
from app.server.cli_commands import add_server_commands
from app.sessions._engine import DEFAULT_DATABASE_URL, redact

DATABASE_URL_ENV = "AGENT_SERVICE_DATABASE_URL"

Command = Callable[[argparse.Namespace], int]


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line with `argv` (default: `sys.argv[1:]`); return the exit code."""
    parser = _build_parser()
    args = parser.parse_args(argv)
    command: Command | None = getattr(args, "handler", None)
    if command is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return command(args)
    except (ConfigError, DatabaseUnavailableError) as exc:
        print(f"agent-service {args.command}: {exc}", file=sys.stderr)
        return 2


def _build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="agent-service",
        description="Run AI agents and serve them to frontends over HTTP, SSE and WebSockets.",
    )
    subcommands = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_migrate(subcommands)
    add_server_commands(subcommands)  # serve, openapi, run, keys, devui (app/server/...)
    return parser


def _add_migrate(subcommands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subcommands.add_parser(
        "migrate",
        help="apply the database migrations (or check whether any are pending)",
        description="Bring the session database's schema to the newest revision.",
    )
    parser.add_argument(
        "--database-url",
        metavar="URL",
        help=f"database to migrate (default: ${DATABASE_URL_ENV}, else {DEFAULT_DATABASE_URL})",
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="change nothing; exit 1 when migrations are pending, 0 when at head",
    )
    parser.set_defaults(handler=_migrate)


def _database_url(args: argparse.Namespace) -> str:
    """The URL from --database-url, else the environment, else the SQLite default."""
    url: str | None = args.database_url or os.environ.get(DATABASE_URL_ENV)
    return url or DEFAULT_DATABASE_URL


def _migrate(args: argparse.Namespace) -> int:
    """`agent-service migrate`: upgrade to head, or with --check report whether it is needed."""
    return asyncio.run(_migrate_async(_database_url(args), check=args.check))


async def _migrate_async(url: str, *, check: bool) -> int:
    # Imported here: alembic is not needed by `serve`, whose start-up it would slow.
    from app.sessions.migration import current_revision, head_revision, upgrade

    where = redact(url)
    head = head_revision()
    current = await current_revision(url)
    if current == head:
        print(f"{where}: at head ({head})")
        return 0
    if check:
        print(
            f"{where}: at revision {current or '<none>'}, head is {head}; "
            "run `agent-service migrate`",
            file=sys.stderr,
        )
        return 1
    await upgrade(url)
    print(f"{where}: migrated from {current or '<empty>'} to {head}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
