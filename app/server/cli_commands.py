"""CLI subcommands of the server: `serve`, `openapi` and `run` (wired into `app/cli.py`).

`add_server_commands(subparsers)` registers them on an argparse subparsers object; each
parser gets `handler=<function(args) -> exit code>` as its default.
"""

# ruff: noqa: T201 - a command line tool prints by design

from __future__ import annotations

import argparse
import asyncio
import contextlib
import copy
import json
import logging
import os
import shutil
import sys
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from app.errors import AgentServiceError

DEFAULT_OPENAPI_PATH = Path("openapi/openapi.json")


def add_server_commands(subparsers: Any) -> None:
    """Register `serve`, `openapi` and `run` on an argparse subparsers object."""
    serve = subparsers.add_parser("serve", help="serve the agents over HTTP (uvicorn)")
    serve.add_argument("--host", help="interface to bind (default: AGENT_SERVICE_HOST)")
    serve.add_argument("--port", type=int, help="port (default: AGENT_SERVICE_PORT)")
    serve.add_argument("--workers", type=int, default=1, help="worker processes (default 1)")
    serve.add_argument("--reload", action="store_true", help="restart on code changes (dev)")
    serve.add_argument(
        "--http",
        choices=["auto", "httptools", "h11"],
        default="auto",
        help="HTTP/1.1 parser (default auto: httptools when installed)",
    )
    serve.set_defaults(handler=serve_command)

    openapi = subparsers.add_parser("openapi", help="write the OpenAPI document")
    openapi.add_argument(
        "--out", type=Path, default=DEFAULT_OPENAPI_PATH, help=f"default {DEFAULT_OPENAPI_PATH}"
    )
    openapi.set_defaults(handler=openapi_command)

    run = subparsers.add_parser("run", help="run one turn of an app in the terminal")
    run.add_argument("app", help="app (folder) name")
    run.add_argument("message", help="the user's message")
    run.add_argument("--user", default="cli-user", help="user id (default cli-user)")
    run.add_argument("--session", help="session id (default: a new session)")
    run.add_argument("--agents-dir", type=Path, help="default: AGENT_SERVICE_AGENTS_DIR")
    run.add_argument(
        "--db",
        action="store_true",
        help="use AGENT_SERVICE_DATABASE_URL instead of an in-memory session store",
    )
    run.set_defaults(handler=run_command)

    from app.server.security.keys_cli import add_keys_command

    add_keys_command(subparsers)

    from app.server.dev_ui.cli import add_devui_command

    add_devui_command(subparsers)


def logging_config(level: str, log_format: str = "text") -> dict[str, Any]:
    """Return uvicorn's logging config extended to this package's loggers.

    Every formatter scrubs secrets; `json` writes one JSON object per line (README).
    """
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    for name, formatter in config["formatters"].items():
        if log_format == "json":
            config["formatters"][name] = {"()": "app.observability.logs.json_formatter"}
        else:
            inner = formatter.pop("()")
            config["formatters"][name] = {
                "()": "app.observability.logs.redacting_formatter",
                "inner": inner,
                **formatter,
            }
    config["loggers"]["app"] = {
        "handlers": ["default"],
        "level": level.upper(),
        "propagate": False,
    }
    for name in ("uvicorn", "uvicorn.error"):
        config["loggers"][name]["level"] = level.upper()
    return config


def serve_command(args: argparse.Namespace) -> int:
    """Run uvicorn on the app factory, so that `--workers N` builds one app per worker."""
    import uvicorn

    from app.server.protocols import protocol_class
    from app.server.settings import load_settings

    settings = load_settings()
    if args.host:
        # Each worker builds its app from the environment; the start-up warning about auth
        # being off on a public interface needs the host actually bound.
        os.environ["AGENT_SERVICE_HOST"] = args.host
    workers = None if args.reload else args.workers
    with metrics_exposition(settings, shared=bool(args.reload or (workers or 1) > 1)):
        uvicorn.run(
            "app.server.app:create_app",
            factory=True,
            host=args.host or settings.host,
            port=args.port or settings.port,
            workers=workers,
            reload=args.reload,
            log_level=settings.log_level,
            log_config=logging_config(settings.log_level, settings.log_format),
            timeout_graceful_shutdown=10,
            # A cold worker imports for 3 s of CPU; on a busy 2-core host that took over
            # uvicorn's 5 s health-check limit, and workers were killed and respawned in a loop.
            timeout_worker_healthcheck=30,
            # uvicorn's parser, with one socket write per event-loop pass (protocols.py).
            http=protocol_class(args.http),
            # PCM audio does not compress; permessage-deflate only costs ~50-90 KiB per live
            # session and CPU per frame (benchmarks/RESULTS-live_relay.md).
            ws_per_message_deflate=False,
        )
    return 0


@contextlib.contextmanager
def metrics_exposition(settings: Any, *, shared: bool) -> Iterator[None]:
    """Set up what `/metrics` needs around the server's lifetime.

    With several processes (`shared`), give them one multiprocess directory (a fresh temporary
    one unless PROMETHEUS_MULTIPROC_DIR is set, which is then emptied of old values). With
    `metrics_port`, serve the metrics on that port from this (the supervising) process.
    """
    from app.observability import metrics

    created: str | None = None
    if shared and settings.metrics:
        directory = os.environ.get(metrics.MULTIPROC_DIR_ENV)
        if directory:
            for stale in Path(directory).glob("*.db"):
                stale.unlink()
        else:
            created = tempfile.mkdtemp(prefix="agent-service-metrics-")
            os.environ[metrics.MULTIPROC_DIR_ENV] = created
    server = None
    try:
        if settings.metrics and settings.metrics_port is not None:
            from prometheus_client import start_http_server

            # In multiprocess mode this registry reads every worker's files on each scrape.
            server, _thread = start_http_server(
                settings.metrics_port, addr=settings.host, registry=metrics.registry()
            )
        yield
    finally:
        if server is not None:
            server.shutdown()
            server.server_close()
        if created is not None:
            os.environ.pop(metrics.MULTIPROC_DIR_ENV, None)
            shutil.rmtree(created, ignore_errors=True)


def openapi_document() -> dict[str, Any]:
    """Return the OpenAPI document of the app (no database or agents needed)."""
    from app.server.app import create_app
    from app.server.settings import Settings

    return create_app(Settings(database_url="memory://")).openapi()


def render_openapi() -> str:
    """Return the OpenAPI document as the text committed in `openapi/openapi.json`."""
    return json.dumps(openapi_document(), indent=2, ensure_ascii=False) + "\n"


def openapi_command(args: argparse.Namespace) -> int:
    """Write the OpenAPI document."""
    out: Path = args.out
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(render_openapi(), encoding="utf-8")
    print(f"wrote {out}")
    return 0


def run_command(args: argparse.Namespace) -> int:
    """Run one turn and print the reply as it streams."""
    from app.server.settings import load_settings

    settings = load_settings()
    if args.agents_dir is not None:
        settings.agents_dir = args.agents_dir
    if not args.db:
        settings.database_url = "memory://"
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return asyncio.run(_run_turn(settings, args))
    except AgentServiceError as exc:
        print(f"error ({exc.code}): {exc}", file=sys.stderr)
        return 1


async def _run_turn(settings: Any, args: argparse.Namespace) -> int:
    from google.genai import types

    from app.agents import RunConfig, StreamingMode
    from app.server.app import build_services, close_services

    services = await build_services(settings)
    try:
        runner = services.runners.runner(args.app)
        session_id = args.session or str(uuid.uuid4())
        existing = await services.sessions.get_session(
            app_name=args.app, user_id=args.user, session_id=session_id
        )
        if existing is None:
            await services.sessions.create_session(
                app_name=args.app, user_id=args.user, session_id=session_id
            )
        message = types.Content(role="user", parts=[types.Part(text=args.message)])
        streamed = False
        async for event in runner.run_async(
            user_id=args.user,
            session_id=session_id,
            new_message=message,
            run_config=RunConfig(streaming_mode=StreamingMode.SSE),
        ):
            if event.partial:
                print(event.text(), end="", flush=True)
                streamed = True
                continue
            for call in event.get_function_calls():
                print(f"[{event.author}] calls {call.name}({json.dumps(call.args or {})})")
            for response in event.get_function_responses():
                print(f"[{event.author}] {response.name} -> {json.dumps(response.response)}")
            text = event.text()
            if text:
                print(text if not streamed else "", flush=True)
                streamed = False
            if event.error_message:
                print(f"[{event.author}] error: {event.error_message}", file=sys.stderr)
        print(f"(session {session_id})", file=sys.stderr)
        return 0
    finally:
        await close_services(services)
