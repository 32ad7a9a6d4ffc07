"""Plugins: cross-cutting callbacks for a whole Runner."""

from __future__ import annotations

from app.plugins.base_plugin import BasePlugin
from app.plugins.plugin_manager import PluginManager

__all__ = ["BasePlugin", "PluginManager"]
