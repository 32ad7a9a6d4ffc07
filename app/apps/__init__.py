"""Apps: a root agent with its app-wide configuration."""

from __future__ import annotations

from app.apps.app import App, EventsCompactionConfig, ResumabilityConfig

__all__ = ["App", "EventsCompactionConfig", "ResumabilityConfig"]
