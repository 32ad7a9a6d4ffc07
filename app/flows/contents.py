"""Build the model's `contents` from a session's history, as seen by one agent."""

from __future__ import annotations

import json
from collections.abc import Sequence

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
    selected = _select(events, branch)
    if current_turn_only:
        selected = _current_turn(selected)
    selected = _rearrange_latest_function_response(selected)
    contents: list[types.Content] = []
    for event in selected:
        content = event.content
        assert content is not None
        if event.author != "user" and event.author != agent_name:
            content = _as_context(event)
        elif _has_client_call_ids(content):
            content = _strip_client_call_ids(content)
        contents.append(content)
    return contents


def _select(events: Sequence[Event], branch: str | None) -> list[Event]:
    return [
        e
        for e in events
        if e.content is not None
        and e.content.parts
        and not e.partial
        and belongs_to_branch(branch, e)
    ]


def _current_turn(events: list[Event]) -> list[Event]:
    for i in range(len(events) - 1, -1, -1):
        if events[i].author == "user":
            return events[i:]
    return events


def _rearrange_latest_function_response(events: list[Event]) -> list[Event]:
    """Place a late function response (long-running tool) right after its call.

    When the latest event answers a call made several events ago, the events in between
    (interim replies) are dropped so the call and its response are adjacent, as models need.
    """
    if len(events) < 2:
        return events
    responses = events[-1].get_function_responses()
    if not responses:
        return events
    ids = {r.id for r in responses if r.id}
    if not ids or any(c.id in ids for c in events[-2].get_function_calls()):
        return events
    for i in range(len(events) - 2, -1, -1):
        call_ids = {c.id for c in events[i].get_function_calls()}
        if call_ids & ids:
            # Keep responses to other calls of that event which came in between.
            between = [
                e
                for e in events[i + 1 : -1]
                if any(r.id in call_ids for r in e.get_function_responses())
            ]
            merged = _merge_responses([*between, events[-1]], call_ids)
            return [*events[: i + 1], merged]
    return events


def _merge_responses(events: list[Event], call_ids: set[str | None]) -> Event:
    by_id: dict[str | None, types.Part] = {}
    for event in events:
        assert event.content is not None
        for part in event.content.parts or []:
            if part.function_response and part.function_response.id in call_ids:
                by_id[part.function_response.id] = part
    last = events[-1]
    return last.model_copy(
        update={"content": types.Content(role="user", parts=list(by_id.values()))}
    )


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
