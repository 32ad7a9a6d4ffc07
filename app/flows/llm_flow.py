"""The LLM loop of an LlmAgent: build the request, call the model, run tools, transfer.

One step is one model call: its (streamed) response events, then, if it called functions,
the function response event, then the transferred-to agent's events. The loop repeats steps
until a step ends with a final response.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING, Any

from google.genai import types

from app.agents._callbacks import run_callbacks
from app.agents.callback_context import CallbackContext
from app.agents.invocation_context import InvocationContext
from app.agents.run_config import StreamingMode
from app.events.event import Event, new_event_id
from app.events.event_actions import EventActions
from app.events.llm_response import LlmResponse
from app.flows.contents import build_contents
from app.flows.functions import handle_function_calls, long_running_ids, populate_function_call_ids
from app.models.llm_request import LlmRequest
from app.observability import metrics, tracing
from app.tools.tool_context import ToolContext
from app.tools.transfer_to_agent_tool import TransferToAgentTool

if TYPE_CHECKING:
    from app.agents.base_agent import BaseAgent
    from app.agents.llm_agent import LlmAgent


async def run_llm_flow(ctx: InvocationContext) -> AsyncGenerator[Event, None]:
    """Run model steps until one ends the agent's turn."""
    while True:
        last: Event | None = None
        transferred = False
        async for event in _run_one_step(ctx):
            last = event
            if event.author != ctx.agent.name:
                transferred = True
            yield event
        if last is None or transferred or ctx.end_invocation:
            return
        if last.is_final_response() or last.partial:
            return


async def _run_one_step(ctx: InvocationContext) -> AsyncGenerator[Event, None]:
    agent: LlmAgent = ctx.agent  # type: ignore[assignment]
    request = await build_llm_request(ctx)
    event_id = new_event_id()
    async for event in _call_model(ctx, request, event_id):
        if event.partial:
            yield event
            continue
        event_id = new_event_id()  # a second final response would need its own id
        populate_function_call_ids(event)
        event.long_running_tool_ids = long_running_ids(event, request.tools_dict)
        _apply_output_key(agent, event)
        yield event
        if not event.get_function_calls():
            continue
        response_event = await handle_function_calls(ctx, event, request.tools_dict)
        if response_event is None:
            return
        yield response_event
        if ctx.should_pause_invocation(event):
            # Resumable apps pause here; the client resumes with the real function response.
            ctx.end_invocation = True
            return
        target_name = response_event.actions.transfer_to_agent
        if target_name:
            target = agent.root_agent.find_agent(target_name)
            if target is None:
                raise ValueError(f"Agent {target_name!r} not found in the agent tree.")
            async for transferred in target.run_async(ctx):
                yield transferred
            return


async def build_llm_request(ctx: InvocationContext) -> LlmRequest:
    """Assemble the request an agent sends: instructions, tools, history."""
    agent: LlmAgent = ctx.agent  # type: ignore[assignment]
    llm = agent.canonical_model
    config = (
        agent.generate_content_config.model_copy(deep=True)
        if agent.generate_content_config is not None
        else types.GenerateContentConfig()
    )
    request = LlmRequest(model=llm.model, config=config)
    request.append_instructions(await _instructions(ctx, agent))
    tool_context = ToolContext(ctx)
    for tool in agent.canonical_tools():
        await tool.process_llm_request(tool_context=tool_context, llm_request=request)
    targets = transfer_targets(agent)
    if targets:
        request.append_instructions([_transfer_instruction(agent, targets)])
        await TransferToAgentTool([t.name for t in targets]).process_llm_request(
            tool_context=tool_context, llm_request=request
        )
    request.contents = build_contents(
        ctx.session.events,
        agent_name=agent.name,
        branch=ctx.branch,
        current_turn_only=agent.include_contents == "none",
    )
    return request


def transfer_targets(agent: LlmAgent) -> list[BaseAgent]:
    """Agents `agent` may transfer to: its children, its parent and its peers (if allowed)."""
    from app.agents.llm_agent import LlmAgent

    targets: list[BaseAgent] = list(agent.sub_agents)
    parent = agent.parent_agent
    if isinstance(parent, LlmAgent):
        if not agent.disallow_transfer_to_parent:
            targets.append(parent)
        if not agent.disallow_transfer_to_peers:
            targets.extend(peer for peer in parent.sub_agents if peer is not agent)
    return targets


def _transfer_instruction(agent: LlmAgent, targets: list[BaseAgent]) -> str:
    lines = [
        "You can transfer the conversation to one of these agents:",
        *(f"- {t.name}: {t.description or '(no description)'}" for t in targets),
        "",
        "Answer yourself when your own description fits the request best. Otherwise call "
        "`transfer_to_agent` with the agent's name, and write no text besides the call.",
    ]
    parent = agent.parent_agent
    if parent is not None and parent in targets:
        lines.append(
            f"When the request is outside your description, transfer back to `{parent.name}`."
        )
    return "\n".join(lines)


async def _instructions(ctx: InvocationContext, agent: LlmAgent) -> list[str]:
    context = CallbackContext(ctx)
    parts: list[str] = []
    root = agent.root_agent
    from app.agents.llm_agent import LlmAgent

    if isinstance(root, LlmAgent) and root.global_instruction:
        parts.append(await root.canonical_instruction(context, root.global_instruction))
    if agent.instruction:
        parts.append(await agent.canonical_instruction(context, agent.instruction))
    return [p for p in parts if p]


async def _call_model(
    ctx: InvocationContext, request: LlmRequest, event_id: str
) -> AsyncGenerator[Event, None]:
    agent: LlmAgent = ctx.agent  # type: ignore[assignment]
    plugins = ctx.plugin_manager
    callback_context = CallbackContext(ctx)
    response = await plugins.run(
        "before_model_callback", callback_context=callback_context, llm_request=request
    )
    if response is None:
        response = await run_callbacks(
            agent.before_model_callback, callback_context=callback_context, llm_request=request
        )
    if response is not None:
        yield _to_event(ctx, response, event_id, callback_context.actions)
        return
    ctx.increment_llm_call_count()
    stream = ctx.run_config.streaming_mode == StreamingMode.SSE
    model = request.model or agent.canonical_model.model
    span = tracing.chat(model, ctx.trace_span, request)
    started = time.perf_counter()
    error_code: str | None = None
    ended = False
    try:
        async with contextlib.aclosing(
            agent.canonical_model.generate_content_async(request, stream=stream)
        ) as responses:
            async for response in responses:
                if not response.partial:
                    # The model's own answer (before callbacks): usage, finish, error code.
                    error_code = response.error_code or error_code
                    metrics.tokens(ctx.app_name, model, response.usage_metadata)
                    tracing.chat_response(span, response)
                altered = await plugins.run(
                    "after_model_callback",
                    callback_context=callback_context,
                    llm_response=response,
                )
                if altered is None:
                    altered = await run_callbacks(
                        agent.after_model_callback,
                        callback_context=callback_context,
                        llm_response=response,
                    )
                final = altered or response
                actions = None if final.partial else callback_context.actions
                yield _to_event(ctx, final, event_id, actions)
    except Exception as exc:
        ended = True
        _end_model_call(model, started, type(exc).__name__, span, exc)
        recovered = await plugins.run(
            "on_model_error_callback",
            callback_context=callback_context,
            llm_request=request,
            error=exc,
        )
        if recovered is None:
            recovered = await run_callbacks(
                agent.on_model_error_callback,
                callback_context=callback_context,
                llm_request=request,
                error=exc,
            )
        if recovered is None:
            raise
        yield _to_event(ctx, recovered, event_id, callback_context.actions)
    finally:
        if not ended:
            _end_model_call(model, started, error_code, span, None)


def _end_model_call(
    model: str, started: float, error_code: str | None, span: Any, error: Exception | None
) -> None:
    metrics.model_call(model, time.perf_counter() - started, error_code)
    tracing.end_span(span, error)


def _to_event(
    ctx: InvocationContext, response: LlmResponse, event_id: str, actions: EventActions | None
) -> Event:
    # Only the fields the response set: validating fourteen Nones per streamed chunk showed
    # up in the token-streaming profile.
    fields: dict[str, Any] = {k: v for k, v in response.__dict__.items() if v is not None}
    return Event(
        id=event_id,
        invocation_id=ctx.invocation_id,
        author=ctx.agent.name,
        branch=ctx.branch,
        actions=actions if actions is not None else EventActions(),
        **fields,
    )


def _apply_output_key(agent: LlmAgent, event: Event) -> None:
    if not agent.output_key or not event.is_final_response() or event.error_code:
        return
    text = event.text()
    if not text:
        return
    value: Any = text
    if agent.output_schema is not None:
        try:
            value = agent.output_schema.model_validate_json(text).model_dump(mode="json")
        except ValueError:
            value = text  # not valid for the schema: keep the raw text rather than lose it
    event.actions.state_delta[agent.output_key] = value
