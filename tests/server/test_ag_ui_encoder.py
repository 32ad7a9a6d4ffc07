"""The AG-UI encoder alone: how each of our events and each run end maps to AG-UI events."""

from __future__ import annotations

import json
from typing import Any

from ag_ui.core import Event as AgUiEvent
from google.genai import types
from pydantic import TypeAdapter

from app.events.event import Event
from app.events.event_actions import EventActions
from app.server.wire import RunEnd
from app.server.wire.ag_ui import CANCELLED_CODE, AgUiEncoder

_EVENT = TypeAdapter(AgUiEvent)


def decode(data: bytes) -> list[dict[str, Any]]:
    """Split frames, validate each as an AG-UI event, return them as dicts."""
    text = data.decode()
    assert text == "" or text.endswith("\n\n")
    out = []
    for block in filter(None, text.split("\n\n")):
        assert block.startswith("data: ")
        _EVENT.validate_json(block[6:])
        out.append(json.loads(block[6:]))
    return out


def model(*parts: types.Part, id_: str = "e1", partial: bool = False, **fields: Any) -> Event:
    """A model event."""
    content = types.Content(role="model", parts=list(parts))
    return Event(id=id_, author="a", invocation_id="i", content=content, partial=partial, **fields)


def types_of(events: list[dict[str, Any]]) -> list[str]:
    """The event types, in order."""
    return [e["type"] for e in events]


def test_open_sends_run_started_and_the_state() -> None:
    encoder = AgUiEncoder("t", "r", {"a": 1})
    assert decode(encoder.open()) == [
        {"type": "RUN_STARTED", "threadId": "t", "runId": "r"},
        {"type": "STATE_SNAPSHOT", "snapshot": {"a": 1}},
    ]


def test_final_text_after_partials_only_adds_what_they_missed() -> None:
    encoder = AgUiEncoder("t", "r", {})
    out = decode(encoder.event(model(types.Part(text="Hel"), partial=True)))
    out += decode(encoder.event(model(types.Part(text="lo"), partial=True)))
    out += decode(encoder.event(model(types.Part(text="Hello!"))))
    assert [(e["type"], e.get("delta")) for e in out] == [
        ("TEXT_MESSAGE_START", None),
        ("TEXT_MESSAGE_CONTENT", "Hel"),
        ("TEXT_MESSAGE_CONTENT", "lo"),
        ("TEXT_MESSAGE_CONTENT", "!"),
        ("TEXT_MESSAGE_END", None),
    ]


def test_thoughts_are_not_text() -> None:
    encoder = AgUiEncoder("t", "r", {})
    thought = types.Part(text="hmm", thought=True)
    assert encoder.event(model(thought, partial=True)) == b""
    assert decode(encoder.event(model(thought, types.Part(text="yes"))))[1]["delta"] == "yes"


def test_a_call_closes_the_open_text_first() -> None:
    encoder = AgUiEncoder("t", "r", {})
    encoder.event(model(types.Part(text="Let me check"), partial=True))
    call = types.Part(function_call=types.FunctionCall(id="c1", name="f", args={"x": "é"}))
    out = decode(encoder.event(model(types.Part(text="Let me check"), call)))
    assert out == [
        {"type": "TEXT_MESSAGE_END", "messageId": "e1"},
        {
            "type": "TOOL_CALL_START",
            "toolCallId": "c1",
            "toolCallName": "f",
            "parentMessageId": "e1",
        },
        {"type": "TOOL_CALL_ARGS", "toolCallId": "c1", "delta": '{"x":"é"}'},
        {"type": "TOOL_CALL_END", "toolCallId": "c1"},
    ]


def test_several_results_get_distinct_message_ids() -> None:
    encoder = AgUiEncoder("t", "r", {})
    parts = [
        types.Part(function_response=types.FunctionResponse(id=c, name="f", response={"n": 1}))
        for c in ("c1", "c2")
    ]
    event = Event(id="e2", author="a", content=types.Content(role="user", parts=parts))
    out = decode(encoder.event(event))
    assert [(e["messageId"], e["toolCallId"], e["role"]) for e in out] == [
        ("e2.0", "c1", "tool"),
        ("e2.1", "c2", "tool"),
    ]


def test_state_delta_is_an_add_patch_with_escaped_keys() -> None:
    encoder = AgUiEncoder("t", "r", {})
    delta = {"a/b": 1, "m~n": None, "temp:x": 2, "user:name": "Ann"}
    out = decode(encoder.event(Event(author="a", actions=EventActions(state_delta=delta))))
    assert out == [
        {
            "type": "STATE_DELTA",
            "delta": [
                {"op": "add", "path": "/a~1b", "value": 1},
                {"op": "add", "path": "/m~0n", "value": None},
                {"op": "add", "path": "/user:name", "value": "Ann"},
            ],
        }
    ]
    assert encoder.event(Event(author="a", actions=EventActions(state_delta={"temp:y": 1}))) == b""


def test_user_events_are_not_sent() -> None:
    encoder = AgUiEncoder("t", "r", {})
    user = Event(author="user", content=types.Content(role="user", parts=[types.Part(text="x")]))
    assert encoder.event(user) == b""


def test_completed_run_closes_open_text_before_run_finished() -> None:
    encoder = AgUiEncoder("t", "r", {})
    encoder.event(model(types.Part(text="Hel"), partial=True))
    out = decode(encoder.close(RunEnd("i", 3, "completed")))
    assert types_of(out) == ["TEXT_MESSAGE_END", "RUN_FINISHED"]
    assert encoder.close(RunEnd("i", 3, "completed")) == b""
    assert encoder.event(model(types.Part(text="late"))) == b""


def test_failed_run_is_one_terminal_run_error() -> None:
    encoder = AgUiEncoder("t", "r", {})
    encoder.event(model(types.Part(text="Hel"), partial=True))
    problem = {"status": 502, "code": "model_error", "detail": "The model failed."}
    out = decode(encoder.close(RunEnd("i", 3, "error", problem)))
    assert out == [
        {"type": "TEXT_MESSAGE_END", "messageId": "e1"},
        {"type": "RUN_ERROR", "message": "The model failed.", "code": "model_error"},
    ]
    out = decode(AgUiEncoder("t", "r", {}).close(RunEnd("i", None, "error")))
    assert out == [{"type": "RUN_ERROR", "message": "The run failed.", "code": "internal"}]


def test_cancelled_run_is_a_run_error() -> None:
    out = decode(AgUiEncoder("t", "r", {}).close(RunEnd("i", None, "cancelled")))
    assert out == [
        {"type": "RUN_ERROR", "message": "The run was cancelled.", "code": CANCELLED_CODE}
    ]


def test_an_event_error_code_ends_the_run_with_run_error() -> None:
    encoder = AgUiEncoder("t", "r", {})
    failed = Event(author="a", error_code="SAFETY", error_message="Blocked.")
    assert encoder.event(failed) == b""
    out = decode(encoder.close(RunEnd("i", 1, "completed")))
    assert out == [{"type": "RUN_ERROR", "message": "Blocked.", "code": "SAFETY"}]
