"""Wire metrics, tracing and structured logs into the app (`instrument(app, settings)`)."""

from __future__ import annotations

import atexit

from fastapi import FastAPI

from app.observability import logs, metrics, tracing
from app.observability.asgi import ObservabilityMiddleware
from app.server.routes import metrics as metrics_route
from app.server.settings import Settings

_exit_hook = False


def instrument(app: FastAPI, settings: Settings) -> None:
    """Add `/metrics` and the middleware (outermost: call it after every other middleware)."""
    metrics.set_enabled(settings.metrics)
    tracing.configure_from_env()
    logs.install(settings.log_format, settings.log_level)
    global _exit_hook
    if metrics.multiprocess_mode() and not _exit_hook:
        _exit_hook = True  # this worker's in-flight gauges must not outlive it
        atexit.register(metrics.process_exited)
    app.include_router(metrics_route.router)
    app.add_middleware(ObservabilityMiddleware)
