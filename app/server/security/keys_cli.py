"""`agent-service keys create|list|revoke`: manage API keys in the configured database."""

# ruff: noqa: T201 - a command line tool prints by design

from __future__ import annotations

import argparse
import asyncio
import os
import sys
from typing import Any

from app.ids import is_valid_segment_id
from app.server.security.api_keys import ApiKeyStore, describe, parse_duration
from app.sessions._engine import DEFAULT_DATABASE_URL, create_engine

DATABASE_URL_ENV = "AGENT_SERVICE_DATABASE_URL"


def add_keys_command(subparsers: Any) -> None:
    """Register `keys` (with `create`, `list`, `revoke`) on an argparse subparsers object."""
    keys = subparsers.add_parser("keys", help="create, list and revoke API keys")
    keys.add_argument(
        "--database-url", metavar="URL", help=f"default: ${DATABASE_URL_ENV}, else the SQLite file"
    )
    actions = keys.add_subparsers(dest="keys_action", metavar="ACTION", required=True)
    create = actions.add_parser("create", help="create a key and print it (shown only once)")
    create.add_argument("--user", required=True, help="the user the key acts as")
    create.add_argument("--admin", action="store_true", help="may act for any user")
    create.add_argument(
        "--app", action="append", dest="apps", metavar="APP", help="limit to an app (repeatable)"
    )
    create.add_argument("--expires-in", metavar="DURATION", help="e.g. 30d, 12h, 15m")
    actions.add_parser("list", help="list keys (never their secrets)")
    revoke = actions.add_parser("revoke", help="revoke a key by its id")
    revoke.add_argument("key_id", metavar="ID")
    keys.set_defaults(handler=keys_command)


def keys_command(args: argparse.Namespace) -> int:
    """Run one `keys` action; exit 2 on bad input, 1 when revoking an unknown key."""
    if args.keys_action == "create":
        if not is_valid_segment_id(args.user):
            print("keys create: --user is not a valid user id", file=sys.stderr)
            return 2
        try:
            args.expires = parse_duration(args.expires_in) if args.expires_in else None
        except ValueError as exc:
            print(f"keys create: --expires-in: {exc}", file=sys.stderr)
            return 2
    url = args.database_url or os.environ.get(DATABASE_URL_ENV) or DEFAULT_DATABASE_URL
    return asyncio.run(_run(url, args))


async def _run(url: str, args: argparse.Namespace) -> int:
    engine = create_engine(url)
    try:
        store = ApiKeyStore(engine)
        if args.keys_action == "create":
            key, info = await store.create(
                args.user, admin=args.admin, apps=args.apps, expires_in=args.expires
            )
            print(key)
            print(f"id {info.key_id}: store this key now, it is not shown again", file=sys.stderr)
            return 0
        if args.keys_action == "list":
            print("id\tuser\trole\tapps\tcreated\texpires\tstatus")
            for info in await store.list():
                print(describe(info))
            return 0
        if await store.revoke(args.key_id):
            print(f"revoked {args.key_id}")
            return 0
        print(f"keys revoke: no active key {args.key_id}", file=sys.stderr)
        return 1
    finally:
        await engine.dispose()
