"""PluginManager: runs plugin callbacks in registration order."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from app.plugins.base_plugin import BasePlugin

logger = logging.getLogger(__name__)

_CALLBACKS = (
    "on_user_message_callback",
    "before_run_callback",
    "on_event_callback",
    "after_run_callback",
    "before_agent_callback",
    "after_agent_callback",
    "before_model_callback",
    "after_model_callback",
    "on_model_error_callback",
    "before_tool_callback",
    "after_tool_callback",
    "on_tool_error_callback",
)


class PluginManager:
    """Holds a Runner's plugins; the first non-None result of a callback wins."""

    def __init__(self, plugins: list[BasePlugin] | None = None, close_timeout: float = 5.0) -> None:
        self.plugins: list[BasePlugin] = []
        self.close_timeout = close_timeout
        # Per callback, only the plugins that override it: most runs pay nothing per event.
        self._active: dict[str, list[BasePlugin]] = {name: [] for name in _CALLBACKS}
        for plugin in plugins or []:
            self.register_plugin(plugin)

    def register_plugin(self, plugin: BasePlugin) -> None:
        """Add a plugin.

        Raises:
            ValueError: a plugin with the same name is registered.
        """
        if any(p.name == plugin.name for p in self.plugins):
            raise ValueError(f"Plugin with name '{plugin.name}' already registered.")
        self.plugins.append(plugin)
        for name in _CALLBACKS:
            if getattr(type(plugin), name) is not getattr(BasePlugin, name):
                self._active[name].append(plugin)

    def get_plugin(self, name: str) -> BasePlugin | None:
        """Return the plugin called `name`, if any."""
        return next((p for p in self.plugins if p.name == name), None)

    def has(self, callback: str) -> bool:
        """Return True when some plugin overrides `callback`."""
        return bool(self._active[callback])

    async def run(self, callback: str, **kwargs: Any) -> Any:
        """Run `callback` on each plugin until one returns non-None.

        Raises:
            RuntimeError: a plugin raised; the message names the plugin and callback.
        """
        for plugin in self._active[callback]:
            try:
                result = await getattr(plugin, callback)(**kwargs)
            except Exception as exc:
                raise RuntimeError(
                    f"Error in plugin '{plugin.name}' during '{callback}' callback: {exc}"
                ) from exc
            if result is not None:
                return result
        return None

    async def close(self) -> None:
        """Close every plugin, each bounded by `close_timeout`; errors are logged."""
        for plugin in self.plugins:
            try:
                async with asyncio.timeout(self.close_timeout):
                    await plugin.close()
            except TimeoutError:
                logger.warning("plugin close timed out plugin=%s", plugin.name)
            except Exception:
                logger.exception("plugin close failed plugin=%s", plugin.name)
