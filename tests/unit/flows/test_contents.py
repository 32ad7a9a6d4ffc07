"""build_contents: what one agent's model call sees of the session history."""

from __future__ import annotations

import gc
import weakref
from typing import Any

from google.genai import types

from app.events import Event
from app.flows.contents import build_contents

AGENT = "assistant"


def text_event(author: str, text: str, **fields: Any) -> Event:
    role = "user" if author == "user" else "model"
    return Event(
        author=author,
        content=types.Content(role=role, parts=[types.Part(text=text)]),
        **fields,
    )


def call_event(
    call_id: str, name: str = "get_weather", author: str = AGENT, **fields: Any
) -> Event:
    part = types.Part(
        function_call=types.FunctionCall(id=call_id, name=name, args={"city": "Oslo"})
    )
    return Event(author=author, content=types.Content(role="model", parts=[part]), **fields)


def response_event(
    call_id: str,
    response: dict[str, Any],
    name: str = "get_weather",
    author: str = AGENT,
    **fields: Any,
) -> Event:
    part = types.Part(
        function_response=types.FunctionResponse(id=call_id, name=name, response=response)
    )
    return Event(author=author, content=types.Content(role="user", parts=[part]), **fields)


def texts(contents: list[types.Content]) -> list[str]:
    return [" | ".join(p.text or "" for p in c.parts or [] if p.text) for c in contents]


def build(events: list[Event], branch: str | None = None, **kwargs: Any) -> list[types.Content]:
    return build_contents(events, agent_name=AGENT, branch=branch, **kwargs)


def test_user_and_own_messages_pass_through_unchanged() -> None:
    events = [text_event("user", "hi"), text_event(AGENT, "hello")]

    assert build(events) == [e.content for e in events]


def test_other_agents_text_becomes_user_context() -> None:
    contents = build([text_event("user", "hi"), text_event("greeter", "Welcome!")])

    assert contents[1] == types.Content(
        role="user",
        parts=[types.Part(text="For context:"), types.Part(text="[greeter] said: Welcome!")],
    )


def test_other_agents_tool_calls_and_results_become_text() -> None:
    events = [
        call_event("c1", author="researcher"),
        response_event("c1", {"temp": 3}, author="researcher"),
    ]

    contents = build(events)

    assert all(c.role == "user" for c in contents)
    assert all(
        p.function_call is None and p.function_response is None
        for c in contents
        for p in c.parts or []
    )
    assert texts(contents) == [
        'For context: | [researcher] called tool `get_weather` with parameters: {"city": "Oslo"}',
        'For context: | [researcher] `get_weather` tool returned result: {"temp": 3}',
    ]


def test_other_agents_thoughts_are_left_out() -> None:
    event = Event(
        author="planner",
        content=types.Content(
            role="model",
            parts=[types.Part(text="secret plan", thought=True), types.Part(text="Go north.")],
        ),
    )

    assert texts(build([event])) == ["For context: | [planner] said: Go north."]


def test_sibling_branch_events_are_invisible() -> None:
    events = [
        text_event("user", "compare", branch=None),
        text_event("root", "dispatching", branch="root"),
        text_event("a", "a's work", branch="root.a"),
        text_event("b", "b's work", branch="root.b"),
        text_event("ab", "ab's work", branch="root.ab"),
        text_event("deep", "below a", branch="root.a.deep"),
    ]

    contents = build(events, branch="root.a")

    assert texts(contents) == [
        "compare",
        "For context: | [root] said: dispatching",
        "For context: | [a] said: a's work",
    ]


def test_without_a_branch_every_event_is_visible() -> None:
    events = [text_event("a", "x", branch="root.a"), text_event("b", "y", branch="root.b")]

    assert len(build(events, branch=None)) == 2


def test_partial_and_content_less_events_are_skipped() -> None:
    events = [
        text_event("user", "hi"),
        text_event(AGENT, "hel", partial=True),
        Event(author=AGENT),
        Event(author=AGENT, content=types.Content(role="model", parts=[])),
        text_event(AGENT, "hello"),
    ]

    assert texts(build(events)) == ["hi", "hello"]


def test_current_turn_only_starts_at_the_latest_user_message() -> None:
    events = [
        text_event("user", "first question"),
        text_event(AGENT, "first answer"),
        text_event("user", "second question"),
        call_event("c1"),
        response_event("c1", {"temp": 3}),
    ]

    contents = build(events, current_turn_only=True)

    assert contents == [e.content for e in events[2:]]


def test_full_history_is_the_default() -> None:
    events = [text_event("user", "q1"), text_event(AGENT, "a1"), text_event("user", "q2")]

    assert texts(build(events)) == ["q1", "a1", "q2"]


def test_client_generated_call_ids_are_stripped() -> None:
    events = [call_event("adk-123"), response_event("adk-123", {"temp": 3})]

    contents = build(events)

    assert contents[0].parts is not None and contents[1].parts is not None
    call = contents[0].parts[0].function_call
    response = contents[1].parts[0].function_response
    assert call is not None and response is not None
    assert call.id is None and call.name == "get_weather"
    assert response.id is None and response.response == {"temp": 3}
    # The stored events keep their ids.
    assert events[0].get_function_calls()[0].id == "adk-123"


def test_model_generated_call_ids_are_kept() -> None:
    events = [call_event("call_abc"), response_event("call_abc", {"temp": 3})]

    contents = build(events)

    assert contents[0].parts is not None and contents[1].parts is not None
    assert contents[0].parts[0].function_call is not None
    assert contents[0].parts[0].function_call.id == "call_abc"
    assert contents[1].parts[0].function_response is not None
    assert contents[1].parts[0].function_response.id == "call_abc"


def test_late_function_response_is_placed_right_after_its_call() -> None:
    events = [
        text_event("user", "approve my expense"),
        call_event("call-1", name="ask_approval", long_running_tool_ids={"call-1"}),
        response_event("call-1", {"status": "pending"}, name="ask_approval"),
        text_event(AGENT, "I asked your manager; waiting."),
        response_event("call-1", {"status": "approved"}, name="ask_approval", author="user"),
    ]

    contents = build(events)

    assert len(contents) == 3
    assert contents[0] == events[0].content
    assert contents[1] == events[1].content
    assert contents[2].role == "user"
    assert contents[2].parts is not None
    (part,) = contents[2].parts
    assert part.function_response is not None
    assert part.function_response.id == "call-1"
    assert part.function_response.response == {"status": "approved"}


def test_response_right_after_its_call_is_left_in_place() -> None:
    events = [
        text_event("user", "weather?"),
        text_event(AGENT, "checking"),
        call_event("call-1"),
        response_event("call-1", {"temp": 3}),
    ]

    assert build(events) == [e.content for e in events]


def test_late_response_keeps_sibling_call_responses_from_the_same_turn() -> None:
    calls = types.Content(
        role="model",
        parts=[
            types.Part(function_call=types.FunctionCall(id="slow", name="ask_approval")),
            types.Part(function_call=types.FunctionCall(id="fast", name="get_weather")),
        ],
    )
    first_responses = types.Content(
        role="user",
        parts=[
            types.Part(
                function_response=types.FunctionResponse(
                    id="slow", name="ask_approval", response={"status": "pending"}
                )
            ),
            types.Part(
                function_response=types.FunctionResponse(
                    id="fast", name="get_weather", response={"temp": 3}
                )
            ),
        ],
    )
    events = [
        text_event("user", "approve and tell me the weather"),
        Event(author=AGENT, content=calls, long_running_tool_ids={"slow"}),
        Event(author=AGENT, content=first_responses),
        text_event(AGENT, "It is 3 degrees; approval pending."),
        response_event("slow", {"status": "approved"}, name="ask_approval", author="user"),
    ]

    contents = build(events)

    assert [c.role for c in contents] == ["user", "model", "user"]
    merged = {
        p.function_response.id: p.function_response.response
        for p in contents[2].parts or []
        if p.function_response
    }
    assert merged == {"slow": {"status": "approved"}, "fast": {"temp": 3}}


def test_the_cached_prefix_leaves_the_events_free_of_reference_cycles() -> None:
    events = [text_event("user", "hi"), text_event(AGENT, "hello"), text_event("user", "and?")]
    build_contents(events, agent_name=AGENT, branch=None)
    build_contents([*events, text_event(AGENT, "more")], agent_name=AGENT, branch=None)
    refs = [weakref.ref(event) for event in events]
    gc.disable()
    try:
        del events
        # Freed by reference counting alone: an evicted cached session must not wait for
        # the cyclic collector (it walks the whole heap, and memory grows until it runs).
        assert [ref() for ref in refs] == [None, None, None]
    finally:
        gc.enable()


def test_the_cached_prefix_is_reused_for_a_longer_history_and_matches_a_fresh_build() -> None:
    events = [text_event("user", "one"), call_event("c1"), text_event(AGENT, "two")]
    first = build_contents(events, agent_name=AGENT, branch=None)
    longer = [*events, text_event("user", "three")]
    assert build_contents(longer, agent_name=AGENT, branch=None) == [
        *first,
        longer[-1].content,
    ]
    fresh = [e.model_copy(deep=True) for e in longer]
    assert build_contents(fresh, agent_name=AGENT, branch=None) == build_contents(
        longer, agent_name=AGENT, branch=None
    )
