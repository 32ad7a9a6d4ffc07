"""BasePlugin: hooks that apply to every agent, model call and tool of a Runner."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from google.genai import types

if TYPE_CHECKING:
    from app.agents.base_agent import BaseAgent
    from app.agents.callback_context import CallbackContext
    from app.agents.invocation_context import InvocationContext
    from app.events.event import Event
    from app.events.llm_response import LlmResponse
    from app.models.llm_request import LlmRequest
    from app.tools.base_tool import BaseTool
    from app.tools.tool_context import ToolContext


class BasePlugin:
    """Override the callbacks you need; returning non-None short-circuits where noted."""

    def __init__(self, name: str) -> None:
        self.name = name

    async def on_user_message_callback(
        self, *, invocation_context: InvocationContext, user_message: types.Content
    ) -> types.Content | None:
        """Inspect or replace the user message before it is stored."""
        return None

    async def before_run_callback(
        self, *, invocation_context: InvocationContext
    ) -> types.Content | None:
        """Return content to end the run early with that content as the reply."""
        return None

    async def on_event_callback(
        self, *, invocation_context: InvocationContext, event: Event
    ) -> Event | None:
        """Return an event to replace `event` before it is stored and yielded."""
        return None

    async def after_run_callback(self, *, invocation_context: InvocationContext) -> None:
        """Called when the run finished (or the caller stopped early)."""
        return None

    async def before_agent_callback(
        self, *, agent: BaseAgent, callback_context: CallbackContext
    ) -> types.Content | None:
        """Return content to skip the agent and reply with that content."""
        return None

    async def after_agent_callback(
        self, *, agent: BaseAgent, callback_context: CallbackContext
    ) -> types.Content | None:
        """Return content to append a final reply after the agent ran."""
        return None

    async def before_model_callback(
        self, *, callback_context: CallbackContext, llm_request: LlmRequest
    ) -> LlmResponse | None:
        """Return a response to skip the model call."""
        return None

    async def after_model_callback(
        self, *, callback_context: CallbackContext, llm_response: LlmResponse
    ) -> LlmResponse | None:
        """Return a response to replace the model's."""
        return None

    async def on_model_error_callback(
        self, *, callback_context: CallbackContext, llm_request: LlmRequest, error: Exception
    ) -> LlmResponse | None:
        """Return a response to recover from a model error."""
        return None

    async def before_tool_callback(
        self, *, tool: BaseTool, tool_args: dict[str, Any], tool_context: ToolContext
    ) -> dict[str, Any] | None:
        """Return a result to skip the tool."""
        return None

    async def after_tool_callback(
        self,
        *,
        tool: BaseTool,
        tool_args: dict[str, Any],
        tool_context: ToolContext,
        result: dict[str, Any],
    ) -> dict[str, Any] | None:
        """Return a result to replace the tool's."""
        return None

    async def on_tool_error_callback(
        self,
        *,
        tool: BaseTool,
        tool_args: dict[str, Any],
        tool_context: ToolContext,
        error: Exception,
    ) -> dict[str, Any] | None:
        """Return a result to recover from a tool error."""
        return None

    async def on_agent_error_callback(
        self, *, agent: BaseAgent, callback_context: CallbackContext, error: Exception
    ) -> None:
        """Notified when an agent raised; the error still propagates."""
        return None

    async def on_run_error_callback(
        self, *, invocation_context: InvocationContext, error: Exception
    ) -> None:
        """Notified when the run raised; the error still propagates."""
        return None

    async def close(self) -> None:
        """Release resources; called by `Runner.close()`."""
        return None
