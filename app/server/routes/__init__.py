"""One router per resource."""

from __future__ import annotations

from app.server.routes import (
    adk,
    ag_ui,
    ai_sdk,
    apps,
    artifacts,
    events,
    health,
    live,
    memory,
    runs,
    sessions,
    usage,
)

ROUTERS = [
    health.router,
    apps.router,
    runs.router,
    memory.router,
    sessions.router,
    events.router,
    artifacts.router,
    live.router,
    usage.router,
    ag_ui.router,
    ai_sdk.router,
    adk.router,
]
"""Routers in registration order (`:run` before the plain session routes)."""

__all__ = ["ROUTERS"]
