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
        result = await _answer_unknown_tool(ctx, agent, call, tools, args, tool_context)
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


class _MissingTool(BaseTool):
    """Stands for a tool the model named but the agent does not have, for the callbacks."""

    def __init__(self, name: str) -> None:
        super().__init__(name=name, description="Tool not found")

    async def run_async(self, *, args: dict[str, Any], tool_context: ToolContext) -> Any:
        raise ValueError(f"Tool '{self.name}' not found.")


async def _answer_unknown_tool(
    ctx: InvocationContext,
    agent: LlmAgent,
    call: types.FunctionCall,
    tools: dict[str, BaseTool],
    args: dict[str, Any],
    tool_context: ToolContext,
) -> Any:
    """A call to a tool the agent lacks, as the reference runtime handles it.

    A before-tool callback may still answer it (after-tool callbacks then run as usual);
    otherwise the on-tool-error callbacks get a ValueError naming the available tools and
    their result is the response; with none, that error ends the run.

    Raises:
        ValueError: no callback answered the call.
    """
    tool = _MissingTool(call.name or "<unnamed>")
    plugins = ctx.plugin_manager
    result = await plugins.run_before_tool_callback(
        tool=tool, tool_args=args, tool_context=tool_context
    )
    if result is None:
        result = await run_callbacks(
            agent.before_tool_callback, tool=tool, args=args, tool_context=tool_context
        )
    if result is not None:
        return await _after_tool(ctx, agent, tool, args, tool_context, result)
    error = ValueError(
        f"Tool '{call.name}' not found.\nAvailable tools: {', '.join(tools)}\n\n"
        "Check the agent's instruction and its tools list for the name the model used."
    )
    result = await _on_tool_error(ctx, agent, tool, args, tool_context, error)
    if result is None:
        raise error
    return result


async def _on_tool_error(
    ctx: InvocationContext,
    agent: LlmAgent,
    tool: BaseTool,
    args: dict[str, Any],
    tool_context: ToolContext,
    error: Exception,
) -> Any:
    """The first non-None result of the plugins' then the agent's on-tool-error callbacks."""
    result = await ctx.plugin_manager.run_on_tool_error_callback(
        tool=tool, tool_args=args, tool_context=tool_context, error=error
    )
    if result is None:
        result = await run_callbacks(
            agent.on_tool_error_callback,
            tool=tool,
            args=args,
            tool_context=tool_context,
            error=error,
        )
    return result


async def _after_tool(
    ctx: InvocationContext,
    agent: LlmAgent,
    tool: BaseTool,
    args: dict[str, Any],
    tool_context: ToolContext,
    result: Any,
) -> Any:
    """The result as the plugins' then the agent's after-tool callbacks leave it."""
    altered = await ctx.plugin_manager.run(
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
            result = await _on_tool_error(ctx, agent, tool, args, tool_context, exc)
            if result is None:
                result = {"error": f"{type(exc).__name__}: {exc}"}
    if result is None and tool.is_long_running:
        return None
    return await _after_tool(ctx, agent, tool, args, tool_context, result)
