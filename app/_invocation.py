"""Starting an invocation: the user message, the agent to run, persisting events."""

from __future__ import annotations

from google.genai import types

from app.agents.base_agent import BaseAgent
from app.agents.invocation_context import InvocationContext
from app.agents.llm_agent import LlmAgent
from app.events.event import Event
from app.events.event_actions import EventActions
from app.sessions.session import Session


def normalize_user_message(message: types.Content) -> types.Content:
    """Force the user role and refuse function calls in a user message.

    Raises:
        ValueError: the message contains function-call parts.
    """
    if any(part.function_call for part in message.parts or []):
        raise ValueError("A user message cannot contain function calls.")
    if message.role != "user":
        message = message.model_copy(update={"role": "user"})
    return message


def stored_user_event(
    session: Session, invocation_id: str, message: types.Content | None
) -> Event | None:
    """Return the event in which a retry of `invocation_id` already stored this user message."""
    for event in reversed(session.events):
        if event.invocation_id != invocation_id:
            continue
        if event.author == "user" and event.content == message:
            return event
    return None


def invocation_user_message(session: Session, invocation_id: str) -> types.Content | None:
    """The user text message that started `invocation_id`, if the session holds it."""
    for event in session.events:
        if event.invocation_id != invocation_id or event.author != "user":
            continue
        if event.content and event.content.parts and event.content.parts[0].text:
            return event.content
    return None


def user_event(
    ctx: InvocationContext, message: types.Content | None, state_delta: dict[str, object] | None
) -> Event:
    """The event that records the user's message and/or state change.

    It carries the run's `custom_metadata` like every other event of the run, so that a
    frontend protocol can find what the run was started with (AG-UI message ids).
    """
    metadata = ctx.run_config.custom_metadata
    return Event(
        invocation_id=ctx.invocation_id,
        author="user",
        content=message,
        actions=EventActions(state_delta=dict(state_delta or {})),
        custom_metadata=dict(metadata) if metadata else None,
    )


def open_calls_answer(
    events: list[Event], invocation_id: str | None, response: dict[str, object]
) -> Event | None:
    """Return one event answering, with `response`, every call in `events` left without a
    response (long-running calls excepted), or None when none is open."""
    answered = {r.id for e in events for r in e.get_function_responses()}
    first: Event | None = None
    parts: list[types.Part] = []
    for event in events:
        if invocation_id is not None and event.invocation_id != invocation_id:
            continue
        waiting = event.long_running_tool_ids or set()
        for call in event.get_function_calls():
            if call.id in answered or call.id in waiting:
                continue
            first = first or event
            reply = types.FunctionResponse(id=call.id, name=call.name, response=dict(response))
            parts.append(types.Part(function_response=reply))
    if first is None:
        return None
    return Event(
        invocation_id=first.invocation_id,
        author=first.author,
        branch=first.branch,
        content=types.Content(role="user", parts=parts),
    )


def find_agent_to_run(session: Session, root: BaseAgent) -> BaseAgent:
    """Pick who answers: the caller of a function the user answered, else the agent that
    spoke last (if it can hand back up the tree), else the root."""
    events = session.events
    if events and events[-1].author == "user":
        ids = {r.id for r in events[-1].get_function_responses() if r.id}
        if ids:
            for event in reversed(events[:-1]):
                if any(c.id in ids for c in event.get_function_calls()):
                    return root.find_agent(event.author) or root
    for event in reversed(events):
        if event.author == "user":
            continue
        if event.author == root.name:
            return root
        agent = root.find_sub_agent(event.author)
        if agent is not None and _can_reach_root(agent):
            return agent
    return root


def _can_reach_root(agent: BaseAgent) -> bool:
    """True when `agent` and every ancestor are LlmAgents that may hand back to their parent.

    A workflow agent (sequential, parallel, loop) anywhere above means the next turn must
    start from the root again, so the workflow runs as designed.
    """
    current: BaseAgent | None = agent
    while current is not None:
        if not isinstance(current, LlmAgent) or current.disallow_transfer_to_parent:
            return False
        current = current.parent_agent
    return True
