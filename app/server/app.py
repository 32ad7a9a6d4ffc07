"""create_app(): the FastAPI application factory and its lifespan.

`uvicorn --factory app.server.app:create_app` calls it with no arguments (settings from the
environment), so `--workers N` works; tests pass a `Settings`.
"""

from __future__ import annotations

import gc
import ipaddress
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from fastapi import FastAPI
from starlette.middleware.cors import CORSMiddleware
from starlette.middleware.gzip import GZipMiddleware
from starlette.types import ASGIApp, Receive, Scope, Send

import app as app_package
from app.artifacts import BaseArtifactService, DatabaseArtifactService, InMemoryArtifactService
from app.errors import ConfigError
from app.memory import BaseMemoryService, DatabaseMemoryService, InMemoryMemoryService
from app.runs import (
    LocalNotifier,
    MemoryRunStore,
    PostgresNotifier,
    RunManager,
    RunNotifier,
    RunStore,
    SqlRunStore,
)
from app.server.deps import Services
from app.server.dev_ui.bundle import dev_ui_directory
from app.server.dev_ui.mount import mount_dev_ui
from app.server.docs_ui import install_docs
from app.server.drain import Drainer
from app.server.errors import install_error_handlers
from app.server.idle_sessions import IdleSessionCloser
from app.server.limits import RequestLimitsMiddleware
from app.server.loader import BrokenApp, load_agents
from app.server.observability import instrument
from app.server.openapi import install_openapi
from app.server.quotas import MemoryQuotaStore, PostgresQuotaStore, Quotas, QuotaStore
from app.server.registry import RunnerRegistry
from app.server.routes import ROUTERS
from app.server.security.api_keys import ApiKeyStore, api_keys
from app.server.security.authenticator import Authenticator
from app.server.security.jwt_tokens import JwtVerifier
from app.server.security.middleware import AuthMiddleware
from app.server.settings import Settings, check_auth_settings, load_settings
from app.sessions import BaseSessionService, DatabaseSessionService, InMemorySessionService

logger = logging.getLogger(__name__)

MEMORY_URL = "memory://"
"""`AGENT_SERVICE_DATABASE_URL` value for sessions kept in process memory (lost on restart)."""


def create_app(settings: Settings | None = None) -> FastAPI:
    """Build the application; services are created in its lifespan, not here."""
    settings = settings or load_settings()
    check_auth_settings(settings)
    app = FastAPI(
        title="agent-service",
        version=app_package.__version__,
        summary="Run agents and serve them to frontends over HTTP and Server-Sent Events.",
        lifespan=_lifespan(settings),
        docs_url=None,  # install_docs: the same pages, with assets served here (offline)
        redoc_url=None,
    )
    install_error_handlers(app)
    for router in ROUTERS:
        app.include_router(router)
    install_openapi(app)
    install_docs(app)
    dev_ui = dev_ui_directory(settings.dev_ui_dir, settings.dev_ui)
    if dev_ui is not None:
        mount_dev_ui(app, dev_ui)
    # add_middleware wraps: the last one added is the outermost. CORS goes outside so that
    # 401/403s and 413s carry CORS headers; auth goes inside the body limit (a refused
    # caller's body is never read).
    app.add_middleware(AuthMiddleware, cors_origins=settings.cors_origins)
    app.add_middleware(RequestLimitsMiddleware, max_body_bytes=settings.max_body_bytes)
    app.add_middleware(GZipExceptRunsMiddleware, minimum_size=1024)
    if settings.cors_origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=settings.cors_origins,
            allow_methods=["*"],
            allow_headers=["*"],
            expose_headers=["*"],
        )
    instrument(app, settings)  # outermost: request ids and metrics cover every response
    return app


GC_THRESHOLDS = (10_000, 20, 20)
"""`gc.set_threshold` once the app has started (the defaults are 700, 10, 10)."""


_UNZIPPED_RUN_PATHS = frozenset({"/adk/run", "/adk/run_sse"})


class GZipExceptRunsMiddleware:
    """Gzip large JSON responses (session and event listings), but never a run.

    A run is SSE (compression would buffer frames) or a short JSON body; skipping the gzip
    wrapper entirely on `:run` also keeps its per-message send hook off the hot path.
    """

    def __init__(self, app: ASGIApp, minimum_size: int = 1024) -> None:
        self.app = app
        self.gzip = GZipMiddleware(app, minimum_size=minimum_size)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"] if scope["type"] == "http" else ""
        if path and not (path.endswith(":run") or path in _UNZIPPED_RUN_PATHS):
            await self.gzip(scope, receive, send)
        else:
            await self.app(scope, receive, send)


def _lifespan(settings: Settings) -> Callable[[FastAPI], AbstractAsyncContextManager[None]]:
    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        services = await build_services(settings)
        app.state.services = services
        warn_if_open(settings)
        if services.idle_closer is not None:
            services.idle_closer.start()
        # Move everything built at start-up (modules, google-genai types, agents) out of the
        # collector's reach: full collections over that heap paused the event loop for
        # 120-230 ms under live load (benchmarks/live_relay.py).
        gc.collect()
        gc.freeze()
        # Runs leave objects alive (the session cache keeps their events), so at the default
        # threshold (700) the young generation was collected every ~7 tool runs, and the older
        # ones, which walk the whole cache, every 70. At 10,000 (benchmarks/http_load.py):
        # 7-19% less server CPU per run and a quarter of the p99 at 32 concurrent runs, for
        # ~20 MiB more RSS. This relies on runs leaving no reference cycles behind (see
        # flows/contents.py): cyclic garbage would now wait much longer to be freed.
        previous = gc.get_threshold()
        gc.set_threshold(*GC_THRESHOLDS)
        drainer = Drainer(services.runs, settings.drain_seconds)
        drainer.install()
        try:
            yield
        finally:
            await drainer.uninstall()
            gc.set_threshold(*previous)
            await close_services(services)

    return lifespan


async def build_services(settings: Settings) -> Services:
    """Open the session store, check its schema, load the agents and build their Runners.

    Raises:
        ConfigError: the schema is not at the migration head (and `migrate_on_start` is off).
        DatabaseUnavailableError: the database cannot be reached.
    """
    sessions, check_ready = await open_session_service(settings)
    artifacts: BaseArtifactService = (
        DatabaseArtifactService(engine=sessions.engine)  # same database, one pool
        if isinstance(sessions, DatabaseSessionService)
        else InMemoryArtifactService()
    )
    memory: BaseMemoryService
    try:
        if isinstance(sessions, DatabaseSessionService):
            memory = DatabaseMemoryService(
                engine=sessions.engine,  # same database, one pool
                language=settings.memory_language,
            )
            await _check_memory_language(memory)
        else:
            memory = InMemoryMemoryService()
        loaded = load_agents(settings.agents_dir)
        registry = RunnerRegistry(
            loaded,
            session_service=sessions,
            artifact_service=artifacts,
            memory_service=memory,
            auto_create_session=settings.auto_create_session,
        )
    except BaseException:
        await sessions.close()
        raise
    try:
        authenticator = build_authenticator(settings, sessions)
        quotas = build_quotas(settings, sessions)
        runs = await open_run_manager(settings, sessions, registry)
    except BaseException:
        await registry.close()
        await sessions.close()
        raise
    broken = [entry.name for entry in loaded if isinstance(entry, BrokenApp)]
    logger.info(
        "agents loaded dir=%s apps=%s broken=%s",
        settings.agents_dir,
        ",".join(registry.names) or "-",
        ",".join(broken) or "-",
    )
    idle_closer = None
    if settings.close_idle_sessions_after is not None:
        idle_closer = IdleSessionCloser(
            registry, sessions, runs, idle_after=settings.close_idle_sessions_after
        )
    return Services(
        settings=settings,
        sessions=sessions,
        artifacts=artifacts,
        memory=memory,
        runners=registry,
        runs=runs,
        check_ready=check_ready,
        idle_closer=idle_closer,
        authenticator=authenticator,
        quotas=quotas,
    )


def build_quotas(settings: Settings, sessions: BaseSessionService) -> Quotas | None:
    """Return the per-user quotas the settings ask for (None when none is set).

    Counted in Postgres when the sessions are there (shared by every replica), else in this
    process (SQLite and `memory://` are served by one process).
    """
    rate, budget = settings.run_rate_limit, settings.token_budget_limit
    active = settings.max_active_runs_per_user
    if rate is None and budget is None and active is None:
        return None
    store: QuotaStore = MemoryQuotaStore()
    if isinstance(sessions, DatabaseSessionService) and _is_postgres(sessions):
        store = PostgresQuotaStore(sessions)
    return Quotas(store, run_rate=rate, max_active_runs=active, token_budget=budget)


def build_authenticator(settings: Settings, sessions: BaseSessionService) -> Authenticator | None:
    """Return the Authenticator `AGENT_SERVICE_AUTH` asks for (None for `none`)."""
    methods = settings.auth_methods
    if not methods:
        return None
    api_keys = None
    if "api_key" in methods:
        if not isinstance(sessions, DatabaseSessionService):
            raise ConfigError("AGENT_SERVICE_AUTH=api_key needs a database for the keys.")
        api_keys = ApiKeyStore(sessions.engine, cache_seconds=settings.api_key_cache_seconds)
    jwts = None
    if "jwt" in methods:
        jwts = JwtVerifier(
            secret=settings.jwt_secret,
            jwks_url=settings.jwt_jwks_url,
            issuer=settings.jwt_issuer,
            audience=settings.jwt_audience,
            user_claim=settings.jwt_user_claim,
            leeway_seconds=settings.jwt_leeway_seconds,
        )
    return Authenticator(api_keys, jwts)


def _is_postgres(sessions: DatabaseSessionService) -> bool:
    return sessions.engine.dialect.name == "postgresql"


def warn_if_open(settings: Settings) -> None:
    """Log a warning when anyone on the network may act as any user."""
    if settings.auth_methods or is_loopback(settings.host):
        return
    logger.warning(
        "authentication is off (AGENT_SERVICE_AUTH=none) on %s: any caller may act as any "
        "user; set AGENT_SERVICE_AUTH=api_key or jwt (README: Authentication)",
        settings.host,
    )


def is_loopback(host: str) -> bool:
    """Return whether `host` is only reachable from this machine."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


async def open_run_manager(
    settings: Settings, sessions: BaseSessionService, registry: RunnerRegistry
) -> RunManager:
    """Start the runs layer on the session store: the database's, or in process."""
    store: RunStore
    notifier: RunNotifier
    if isinstance(sessions, DatabaseSessionService):
        store = SqlRunStore(sessions)
        if sessions.engine.dialect.name == "postgresql":
            notifier = PostgresNotifier(sessions.engine.url)
        else:
            notifier = LocalNotifier()
    else:
        store = MemoryRunStore(sessions)
        notifier = LocalNotifier()
    manager = RunManager(store, notifier, registry.runner, lease_seconds=settings.run_lease_seconds)
    await manager.start()
    return manager


async def _check_memory_language(memory: DatabaseMemoryService) -> None:
    try:
        await memory.check_language()
    except ConfigError as exc:
        raise ConfigError(f"invalid settings: AGENT_SERVICE_MEMORY_LANGUAGE ({exc})") from exc


async def close_services(services: Services) -> None:
    """Stop the idle-session closer and the runs layer, close the Runners, then the stores."""
    try:
        if services.idle_closer is not None:
            await services.idle_closer.close()
        await services.runs.close()
        await services.runners.close()
    finally:
        await services.memory.close()
        await services.artifacts.close()
        await services.sessions.close()


async def open_session_service(
    settings: Settings,
) -> tuple[BaseSessionService, Callable[[], Awaitable[None]]]:
    """Return the configured session service and its readiness check."""
    url = settings.database_url
    if url == MEMORY_URL:

        async def always_ready() -> None:
            return None

        return InMemorySessionService(), always_ready

    from app.sessions import migration
    from app.sessions._engine import redact
    from app.sessions.database_session_service import DatabaseSessionService

    # No pre-ping: it costs a round trip on every pool checkout (three per chat run). After a
    # database restart the first failing call invalidates the whole pool, so one request per
    # process gets a 503 and the next ones reconnect.
    options: dict[str, Any] = {"pool_pre_ping": False}
    if url.startswith(("postgresql", "postgres")):
        # A pool smaller than the runs in flight opens and closes overflow connections
        # continually: at 32 concurrent chat runs, pool_size 10 cost 4x the Postgres CPU.
        options.update(pool_size=settings.db_pool_size, max_overflow=10)
    service = DatabaseSessionService(url, **options)
    try:
        if not await migration.is_at_head(service.engine):
            if not settings.migrate_on_start:
                raise ConfigError(
                    f"The database {redact(url)} is not at the newest schema revision; run "
                    "`agent-service migrate` first (or set AGENT_SERVICE_MIGRATE_ON_START=true)."
                )
            logger.info("migrating database url=%s", redact(url))
            await migration.upgrade(service.engine)
    except BaseException:
        await service.close()
        raise

    tables = (
        *DatabaseSessionService.TABLES,
        *DatabaseArtifactService.TABLES,
        *DatabaseMemoryService.TABLES,
        *SqlRunStore.TABLES,
    )
    if "api_key" in settings.auth_methods:
        tables = (*tables, api_keys.name)
    if service.engine.dialect.name == "postgresql" and (
        settings.run_rate or settings.token_budget or settings.max_active_runs_per_user
    ):
        tables = (*tables, *PostgresQuotaStore.TABLES)

    async def check_ready() -> None:
        await migration.check_schema(service.engine, tables)

    return service, check_ready
