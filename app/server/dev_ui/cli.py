"""`agent-service devui fetch`: download the ADK dev UI bundle into the cache, print where."""

# ruff: noqa: T201 - a command line tool prints by design

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from app.server.dev_ui.bundle import (
    PACKAGE,
    PINNED_VERSION,
    DevUiFetchError,
    default_cache_root,
    fetch_bundle,
)


def add_devui_command(subparsers: Any) -> None:
    """Register `devui` (with `fetch`) on an argparse subparsers object."""
    devui = subparsers.add_parser("devui", help="get the ADK dev UI (served at /dev-ui/)")
    actions = devui.add_subparsers(dest="devui_action", metavar="ACTION", required=True)
    fetch = actions.add_parser(
        "fetch",
        help=f"download the dev UI from the {PACKAGE} wheel into the cache; print its folder",
        description=(
            f"Download the {PACKAGE} wheel with pip (no dependencies), unpack only its browser "
            "bundle into the cache and print the folder. Does nothing if it is cached already. "
            "Serve it with AGENT_SERVICE_DEV_UI=true (this cache, pinned version) or "
            "AGENT_SERVICE_DEV_UI_DIR=<the printed folder>."
        ),
    )
    fetch.add_argument(
        "--version",
        default=PINNED_VERSION,
        help=f"{PACKAGE} release (default {PINNED_VERSION}, the one /adk is tested with)",
    )
    fetch.add_argument(
        "--cache-dir",
        type=Path,
        metavar="DIR",
        help=f"cache root; the bundle goes to DIR/<version> (default {default_cache_root()})",
    )
    fetch.set_defaults(handler=devui_command)


def devui_command(args: argparse.Namespace) -> int:
    """Run `devui fetch`: the bundle's folder on stdout; exit 1 with a message when it fails."""
    try:
        directory, fetched = fetch_bundle(args.version, args.cache_dir)
    except DevUiFetchError as exc:
        print(f"agent-service devui fetch: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"agent-service devui fetch: cannot write the cache: {exc}", file=sys.stderr)
        return 1
    what = "downloaded" if fetched else "already cached"
    print(f"{PACKAGE} {args.version} dev UI {what}", file=sys.stderr)
    print(directory)
    return 0
