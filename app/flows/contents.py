"""Build the model's `contents` from a session's history, as seen by one agent.

Each event's model-facing content (its own, with our generated call ids stripped, or the
"For context:" rewrite another agent sees) is derived once and cached on the event. The list
of visible (event, content) pairs is cached too, on the session's first event, per agent and
branch, so a model call late in a long session only looks at the events added since the
previous call. Stored events are immutable, which is what makes both caches safe.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from google.genai import types

from app.events.event import Event

CLIENT_CALL_ID_PREFIX = "adk-"


def belongs_to_branch(branch: str | None, event: Event) -> bool:
    """Return True when an agent in `branch` may see `event` (its own or an ancestor's)."""
    if not branch or not event.branch:
        return True
    return branch == event.branch or branch.startswith(event.branch + ".")


def build_contents(
    events: Sequence[Event],
    *,
    agent_name: str,
    branch: str | None,
    current_turn_only: bool = False,
) -> list[types.Content]:
    """Return the contents for a model call by `agent_name`.

    Other agents' messages become user-role context ("[agent] said: ..."), so the model never
    sees function calls to tools it does not have. With `current_turn_only`, history before
    the latest user message is left out (`include_contents="none"`).
    """
    visible, contents = _visible(events, agent_name, branch)
    if current_turn_only:
        start = _current_turn_start(visible)
        visible, contents = visible[start:], contents[start:]
    return _rearrange_latest_function_response(visible, contents)


def _visible(
    events: Sequence[Event], agent_name: str, branch: str | None
) -> tuple[list[Event], list[types.Content]]:
    """Return the events `agent_name` in `branch` sees and their model contents (copies)."""
    if not events:
        return [], []
    # Read the private dict directly: pydantic's __getattr__ for private attributes is slow.
    # The prefix is cached on the first event by position and id, never by holding events:
    # a reference from events[0] back to the events would make every cached session one
    # reference cycle, left for the cyclic collector to free once evicted.
    store: dict[Any, Any] = events[0].__pydantic_private__["_views"]  # type: ignore[index]
    key = ("prefix", agent_name, branch)
    positions: list[int] = []
    contents: list[types.Content] = []
    start = 0
    cached = store.get(key)
    if cached is not None:
        covered, last_id, cached_positions, cached_contents = cached
        if covered <= len(events) and events[covered - 1].id == last_id:
            positions, contents = list(cached_positions), list(cached_contents)
            start = covered
    for index in range(start, len(events)):
        event = events[index]
        if event.branch and not belongs_to_branch(branch, event):
            continue
        content = model_view(event, agent_name)
        if content is not None:
            positions.append(index)
            contents.append(content)
    store[key] = (len(events), events[-1].id, positions, contents)
    return [events[i] for i in positions], list(contents)


def model_view(event: Event, agent_name: str) -> types.Content | None:
    """Return what the model of `agent_name` sees of `event` (None: nothing), cached."""
    content = event.content
    views: dict[str, Any] = event.__pydantic_private__["_views"]  # type: ignore[index]
    cached = views.get(agent_name)
    if cached is not None and cached[0] is content:
        return cached[1]
    view: types.Content | None
    if content is None or not content.parts or event.partial:
        view = None
    elif event.author != "user" and event.author != agent_name:
        view = _as_context(event)
    elif _has_client_call_ids(content):
        view = _strip_client_call_ids(content)
    else:
        view = content
    # Keyed on the content's identity: a copy with new content never reuses a stale view.
    views[agent_name] = (content, view)
    return view


def _current_turn_start(visible: list[Event]) -> int:
    for i in range(len(visible) - 1, -1, -1):
        if visible[i].author == "user":
            return i
    return 0


def _rearrange_latest_function_response(
    visible: list[Event], contents: list[types.Content]
) -> list[types.Content]:
    """Place a late function response (long-running tool) right after its call.

    When the latest event answers a call made several events ago, the events in between
    (interim replies) are dropped so the call and its response are adjacent, as models need.
    """
    if len(visible) < 2:
        return contents
    responses = visible[-1].get_function_responses()
    if not responses:
        return contents
    ids = {r.id for r in responses if r.id}
    if not ids or any(c.id in ids for c in visible[-2].get_function_calls()):
        return contents
    for i in range(len(visible) - 2, -1, -1):
        call_ids = {c.id for c in visible[i].get_function_calls()}
        if call_ids & ids:
            # Keep responses to other calls of that event which came in between.
            answering = [
                j
                for j in range(i + 1, len(visible))
                if any(r.id in call_ids for r in visible[j].get_function_responses())
            ]
            return [*contents[: i + 1], _merge_responses(visible, contents, answering, call_ids)]
    return contents


def _merge_responses(
    visible: list[Event],
    contents: list[types.Content],
    answering: list[int],
    call_ids: set[str | None],
) -> types.Content:
    by_id: dict[str | None, types.Part] = {}
    for j in answering:
        stored_content = visible[j].content
        stored_parts = stored_content.parts if stored_content is not None else None
        shown_parts = contents[j].parts or []
        # The shown content may have our generated ids stripped: pair parts by position.
        for stored, shown in zip(stored_parts or [], shown_parts, strict=False):
            if stored.function_response and stored.function_response.id in call_ids:
                by_id[stored.function_response.id] = shown
    return types.Content(role="user", parts=list(by_id.values()))


def _has_client_call_ids(content: types.Content) -> bool:
    for part in content.parts or []:
        call = part.function_call or part.function_response
        if call is not None and call.id and call.id.startswith(CLIENT_CALL_ID_PREFIX):
            return True
    return False


def _strip_client_call_ids(content: types.Content) -> types.Content:
    """Drop the ids we generated: the model did not produce them and need not see them."""
    parts: list[types.Part] = []
    for part in content.parts or []:
        if part.function_call and (part.function_call.id or "").startswith(CLIENT_CALL_ID_PREFIX):
            call = part.function_call.model_copy(update={"id": None})
            part = part.model_copy(update={"function_call": call})
        elif part.function_response and (part.function_response.id or "").startswith(
            CLIENT_CALL_ID_PREFIX
        ):
            response = part.function_response.model_copy(update={"id": None})
            part = part.model_copy(update={"function_response": response})
        parts.append(part)
    return types.Content(role=content.role, parts=parts)


def _as_context(event: Event) -> types.Content:
    """Rewrite another agent's (or a tool's) content as user-role context."""
    assert event.content is not None
    parts = [types.Part(text="For context:")]
    for part in event.content.parts or []:
        if part.thought:
            continue
        if part.text:
            parts.append(types.Part(text=f"[{event.author}] said: {part.text}"))
        elif part.function_call:
            args = json.dumps(part.function_call.args or {}, default=str)
            parts.append(
                types.Part(
                    text=f"[{event.author}] called tool `{part.function_call.name}` "
                    f"with parameters: {args}"
                )
            )
        elif part.function_response:
            result = json.dumps(part.function_response.response or {}, default=str)
            parts.append(
                types.Part(
                    text=f"[{event.author}] `{part.function_response.name}` tool returned "
                    f"result: {result}"
                )
            )
        else:
            parts.append(part)
    return types.Content(role="user", parts=parts)
