"""PluginManager: runs plugin callbacks in registration order."""

from __future__ import annotations

import asyncio
import logging
from typing import TYPE_CHECKING, Any, Literal, get_args

from google.genai import types

from app.plugins.base_plugin import BasePlugin

if TYPE_CHECKING:
    from app.agents.base_agent import BaseAgent
    from app.agents.callback_context import CallbackContext
    from app.agents.invocation_context import InvocationContext
    from app.events.event import Event
    from app.events.llm_response import LlmResponse
    from app.models.llm_request import LlmRequest
    from app.tools.base_tool import BaseTool
    from app.tools.tool_context import ToolContext

logger = logging.getLogger(__name__)

PluginCallbackName = Literal[
    "on_user_message_callback",
    "before_run_callback",
    "after_run_callback",
    "on_event_callback",
    "before_agent_callback",
    "after_agent_callback",
    "before_tool_callback",
    "after_tool_callback",
    "before_model_callback",
    "after_model_callback",
    "on_tool_error_callback",
    "on_model_error_callback",
    "on_agent_error_callback",
    "on_run_error_callback",
]
"""The plugin callbacks, by name."""

_CALLBACKS: tuple[str, ...] = get_args(PluginCallbackName)


class PluginManager:
    """Holds a Runner's plugins; the first non-None result of a callback wins."""

    def __init__(self, plugins: list[BasePlugin] | None = None, close_timeout: float = 5.0) -> None:
        self.plugins: list[BasePlugin] = []
        self.close_timeout = close_timeout
        # Per callback, the plugins whose class overrides it: most runs pay nothing per event.
        # A callback assigned on the instance (e.g. a mock) counts too, checked per call.
        self._active: dict[str, list[BasePlugin]] = {name: [] for name in _CALLBACKS}
        self._instance_overrides = False
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
        """Return True when some plugin implements `callback`."""
        return bool(self._handlers(callback))

    def _handlers(self, callback: str) -> list[BasePlugin]:
        active = self._active[callback]
        if len(active) == len(self.plugins):
            return active
        # Keep registration order, adding plugins whose instance carries the callback.
        return [p for p in self.plugins if p in active or callback in vars(p)]

    async def run(self, callback: str, **kwargs: Any) -> Any:
        """Run `callback` on each plugin until one returns non-None; return that value.

        Raises:
            RuntimeError: a plugin raised; the message names the plugin and callback.
        """
        for plugin in self._handlers(callback):
            try:
                result = await getattr(plugin, callback)(**kwargs)
            except Exception as exc:
                raise RuntimeError(
                    f"Error in plugin '{plugin.name}' during '{callback}' callback: {exc}"
                ) from exc
            if result is not None:
                return result
        return None

    async def notify(self, callback: str, **kwargs: Any) -> None:
        """Run a notification callback on every plugin; a plugin's error is logged, not raised."""
        for plugin in self._handlers(callback):
            try:
                await getattr(plugin, callback)(**kwargs)
            except Exception:
                logger.exception("plugin %s failed in %s", plugin.name, callback)

    # The reference runtime's per-callback entry points.

    async def run_on_user_message_callback(
        self, *, user_message: types.Content, invocation_context: InvocationContext
    ) -> types.Content | None:
        """Plugins may replace the user message."""
        result: types.Content | None = await self.run(
            "on_user_message_callback",
            user_message=user_message,
            invocation_context=invocation_context,
        )
        return result

    async def run_before_run_callback(
        self, *, invocation_context: InvocationContext
    ) -> types.Content | None:
        """Content ends the run early with it as the reply."""
        result: types.Content | None = await self.run(
            "before_run_callback", invocation_context=invocation_context
        )
        return result

    async def run_after_run_callback(self, *, invocation_context: InvocationContext) -> None:
        """The run finished."""
        await self.run("after_run_callback", invocation_context=invocation_context)

    async def run_on_event_callback(
        self, *, invocation_context: InvocationContext, event: Event
    ) -> Event | None:
        """An event replaces the one about to be stored and yielded."""
        result: Event | None = await self.run(
            "on_event_callback", invocation_context=invocation_context, event=event
        )
        return result

    async def run_before_agent_callback(
        self, *, agent: BaseAgent, callback_context: CallbackContext
    ) -> types.Content | None:
        """Content skips the agent and becomes its reply."""
        result: types.Content | None = await self.run(
            "before_agent_callback", agent=agent, callback_context=callback_context
        )
        return result

    async def run_after_agent_callback(
        self, *, agent: BaseAgent, callback_context: CallbackContext
    ) -> types.Content | None:
        """Content is appended as the agent's final reply."""
        result: types.Content | None = await self.run(
            "after_agent_callback", agent=agent, callback_context=callback_context
        )
        return result

    async def run_before_tool_callback(
        self, *, tool: BaseTool, tool_args: dict[str, Any], tool_context: ToolContext
    ) -> dict[str, Any] | None:
        """A dict skips the tool and is its result."""
        result: dict[str, Any] | None = await self.run(
            "before_tool_callback", tool=tool, tool_args=tool_args, tool_context=tool_context
        )
        return result

    async def run_after_tool_callback(
        self,
        *,
        tool: BaseTool,
        tool_args: dict[str, Any],
        tool_context: ToolContext,
        result: dict[str, Any],
    ) -> dict[str, Any] | None:
        """A dict replaces the tool's result."""
        altered: dict[str, Any] | None = await self.run(
            "after_tool_callback",
            tool=tool,
            tool_args=tool_args,
            tool_context=tool_context,
            result=result,
        )
        return altered

    async def run_on_tool_error_callback(
        self,
        *,
        tool: BaseTool,
        tool_args: dict[str, Any],
        tool_context: ToolContext,
        error: Exception,
    ) -> dict[str, Any] | None:
        """A dict recovers from the tool's error and is its result."""
        result: dict[str, Any] | None = await self.run(
            "on_tool_error_callback",
            tool=tool,
            tool_args=tool_args,
            tool_context=tool_context,
            error=error,
        )
        return result

    async def run_before_model_callback(
        self, *, callback_context: CallbackContext, llm_request: LlmRequest
    ) -> LlmResponse | None:
        """A response skips the model call."""
        result: LlmResponse | None = await self.run(
            "before_model_callback", callback_context=callback_context, llm_request=llm_request
        )
        return result

    async def run_after_model_callback(
        self, *, callback_context: CallbackContext, llm_response: LlmResponse
    ) -> LlmResponse | None:
        """A response replaces the model's."""
        result: LlmResponse | None = await self.run(
            "after_model_callback", callback_context=callback_context, llm_response=llm_response
        )
        return result

    async def run_on_model_error_callback(
        self, *, callback_context: CallbackContext, llm_request: LlmRequest, error: Exception
    ) -> LlmResponse | None:
        """A response recovers from the model's error."""
        result: LlmResponse | None = await self.run(
            "on_model_error_callback",
            callback_context=callback_context,
            llm_request=llm_request,
            error=error,
        )
        return result

    async def run_on_agent_error_callback(
        self, *, agent: BaseAgent, callback_context: CallbackContext, error: Exception
    ) -> None:
        """Tell every plugin an agent raised (errors in plugins are logged)."""
        await self.notify(
            "on_agent_error_callback", agent=agent, callback_context=callback_context, error=error
        )

    async def run_on_run_error_callback(
        self, *, invocation_context: InvocationContext, error: Exception
    ) -> None:
        """Tell every plugin the run raised (errors in plugins are logged)."""
        await self.notify(
            "on_run_error_callback", invocation_context=invocation_context, error=error
        )

    async def close(self) -> None:
        """Close every plugin, each bounded by `close_timeout`.

        Raises:
            RuntimeError: some plugins failed (or timed out) to close; all were tried.
        """
        failures: dict[str, BaseException] = {}
        for plugin in self.plugins:
            try:
                async with asyncio.timeout(self.close_timeout):
                    await plugin.close()
            except TimeoutError as exc:
                logger.warning("plugin close timed out plugin=%s", plugin.name)
                failures[plugin.name] = exc
            except Exception as exc:
                logger.exception("plugin close failed plugin=%s", plugin.name)
                failures[plugin.name] = exc
        if failures:
            summary = ", ".join(f"'{name}': {type(exc).__name__}" for name, exc in failures.items())
            raise RuntimeError(f"Failed to close plugins: {summary}")
