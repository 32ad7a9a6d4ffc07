"""Execute the function calls of a model response and build the response event."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from typing import TYPE_CHECKING, Any

from google.genai import types

from app.agents._callbacks import run_callbacks
from app.agents.invocation_context import InvocationContext
from app.events.event import Event
from app.events.event_actions import EventActions
from app.flows.contents import CLIENT_CALL_ID_PREFIX
from app.observability import metrics, tracing
from app.tools.base_tool import BaseTool
from app.tools.tool_context import ToolContext

if TYPE_CHECKING:
    from app.agents.llm_agent import LlmAgent

logger = logging.getLogger(__name__)


def new_function_call_id() -> str:
    """Return an id for a function call the model left without one."""
    return CLIENT_CALL_ID_PREFIX + str(uuid.uuid4())


def populate_function_call_ids(event: Event) -> None:
    """Give every function call in `event` an id, so its response can echo it."""
    for call in event.get_function_calls():
        if not call.id:
            call.id = new_function_call_id()


def long_running_ids(event: Event, tools: dict[str, Any]) -> set[str] | None:
    """Return the ids of calls to long-running tools (None when there are none)."""
    ids = {
        call.id
        for call in event.get_function_calls()
        if call.id and getattr(tools.get(call.name or ""), "is_long_running", False)
    }
    return ids or None


async def handle_function_calls(
    ctx: InvocationContext, call_event: Event, tools: dict[str, BaseTool]
) -> Event | None:
    """Run every call in `call_event` concurrently; return one merged response event.

    A tool that raises yields a response carrying the error, so the model can react; a
    long-running tool that returns None yields no response (it will come later).
    """
    calls = call_event.get_function_calls()
    if not calls:
        return None
    if len(calls) == 1:
        results = [await _call_tool(ctx, calls[0], tools)]
    else:
        async with asyncio.TaskGroup() as group:  # one crash (a plugin error) cancels the rest
            tasks = [group.create_task(_call_tool(ctx, call, tools)) for call in calls]
        results = [task.result() for task in tasks]
    parts: list[types.Part] = []
    actions = EventActions()
    for part, call_actions in results:
        actions.merge(call_actions)
        if part is not None:
            parts.append(part)
    if not parts and actions.is_empty():
        return None
    agent = ctx.agent
    return Event(
        invocation_id=ctx.invocation_id,
        author=agent.name,
        branch=ctx.branch,
        content=types.Content(role="user", parts=parts) if parts else None,
        actions=actions,
    )


async def _call_tool(
    ctx: InvocationContext, call: types.FunctionCall, tools: dict[str, BaseTool]
) -> tuple[types.Part | None, EventActions]:
    agent: LlmAgent = ctx.agent  # type: ignore[assignment]
    tool_context = ToolContext(ctx, function_call_id=call.id)
    args: dict[str, Any] = dict(call.args or {})
    tool = tools.get(call.name or "")
    result: Any
    if tool is None:
        metrics.unknown_tool()
        available = ", ".join(sorted(tools)) or "none"
        result = {"error": f"Tool {call.name!r} not found. Available tools: {available}."}
    else:
        span = tracing.execute_tool(tool.name, call.id, args, ctx.trace_span)
        error: Exception | None = None
        result = None
        try:
            result = await _run_tool_with_callbacks(ctx, agent, tool, args, tool_context, span)
        except Exception as exc:  # a plugin or callback failed: the run fails
            error = exc
            raise
        finally:
            if span is not None:
                tracing.tool_result(span, result if error is None else None)
                tracing.end_span(span, error)
        if result is None and tool.is_long_running:
            return None, tool_context.actions
    if not isinstance(result, dict):
        result = {"result": result}
    response = types.FunctionResponse(id=call.id, name=call.name, response=result)
    return types.Part(function_response=response), tool_context.actions


async def _run_tool_with_callbacks(
    ctx: InvocationContext,
    agent: LlmAgent,
    tool: BaseTool,
    args: dict[str, Any],
    tool_context: ToolContext,
    span: Any = None,
) -> Any:
    plugins = ctx.plugin_manager
    result = await plugins.run(
        "before_tool_callback", tool=tool, tool_args=args, tool_context=tool_context
    )
    if result is None:
        result = await run_callbacks(
            agent.before_tool_callback, tool=tool, args=args, tool_context=tool_context
        )
    if result is None:
        started = time.perf_counter()
        try:
            result = await tool.run_async(args=args, tool_context=tool_context)
            metrics.tool_call(tool.name, time.perf_counter() - started, failed=False)
        except Exception as exc:  # noqa: BLE001 - a tool error becomes the model's input
            metrics.tool_call(tool.name, time.perf_counter() - started, failed=True)
            tracing.mark_error(span, exc)
            logger.warning("tool failed tool=%s error=%s", tool.name, type(exc).__name__)
            result = await plugins.run(
                "on_tool_error_callback",
                tool=tool,
                tool_args=args,
                tool_context=tool_context,
                error=exc,
            )
            if result is None:
                result = await run_callbacks(
                    agent.on_tool_error_callback,
                    tool=tool,
                    args=args,
                    tool_context=tool_context,
                    error=exc,
                )
            if result is None:
                result = {"error": f"{type(exc).__name__}: {exc}"}
    if result is None and tool.is_long_running:
        return None
    altered = await plugins.run(
        "after_tool_callback", tool=tool, tool_args=args, tool_context=tool_context, result=result
    )
    if altered is None:
        altered = await run_callbacks(
            agent.after_tool_callback,
            tool=tool,
            args=args,
            tool_context=tool_context,
            tool_response=result,
        )
    return result if altered is None else altered
