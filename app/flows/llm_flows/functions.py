"""Function-call handling under the reference runtime's module path."""

from __future__ import annotations

from typing import Any

from app.agents.invocation_context import InvocationContext
from app.events.event import Event
from app.flows.functions import handle_function_calls, populate_function_call_ids
from app.tools.base_tool import BaseTool

__all__ = ["handle_function_calls_async", "populate_client_function_call_id"]


async def handle_function_calls_async(
    invocation_context: InvocationContext,
    function_call_event: Event,
    tools_dict: dict[str, BaseTool],
    filters: set[str] | None = None,
    tool_confirmation_dict: dict[str, Any] | None = None,
) -> Event | None:
    """Run the event's function calls (only the ids in `filters`, when given).

    Returns the merged function-response event, or None when no call produced a response.

    Raises:
        ValueError: `tool_confirmation_dict` was given (tool confirmation is not supported).
    """
    if tool_confirmation_dict:
        raise ValueError("Tool confirmation is not supported by this runtime.")
    content = function_call_event.content
    if filters is not None and content is not None:
        kept = [
            part
            for part in content.parts or []
            if part.function_call is None or part.function_call.id in filters
        ]
        filtered = content.model_copy(update={"parts": kept}) if kept else None
        function_call_event = function_call_event.model_copy(update={"content": filtered})
    return await handle_function_calls(invocation_context, function_call_event, tools_dict)


def populate_client_function_call_id(model_response_event: Event) -> None:
    """Give every function call in the event an id, so its response can echo it."""
    populate_function_call_ids(model_response_event)
