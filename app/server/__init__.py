"""The HTTP service: `create_app()` builds the FastAPI application serving the agents."""

from __future__ import annotations

from app.server.app import create_app
from app.server.settings import Settings, load_settings

__all__ = ["Settings", "create_app", "load_settings"]
