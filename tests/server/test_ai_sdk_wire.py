"""Golden streams of the AI SDK encoder: the exact chunks for each kind of run.

The client's parser throws on a chunk out of place (a delta without its start, a result for
an unknown call), so the order is asserted chunk by chunk. tests/js/ai-sdk.test.mjs feeds the
same kinds of runs to the real `ai` client.
"""

from __future__ import annotations

import json
from typing import Any

from google.genai import types

from app.events.event import Event
from app.events.event_actions import EventActions
from app.server.wire.ai_sdk import AiSdkEncoder
from app.server.wire.encoder import RunEnd

INV = "e-1"


def model(event_id: str, *parts: types.Part, partial: bool = False, **extra: Any) -> Event:
    """A model event of the invocation."""
    content = types.Content(role="model", parts=list(parts))
    return Event(
        id=event_id, invocation_id=INV, author="agent", content=content, partial=partial, **extra
    )


def text(value: str, *, thought: bool = False) -> types.Part:
    """A text part (a thought when asked)."""
    return types.Part(text=value, thought=thought or None)


def call(call_id: str, name: str, args: dict[str, Any]) -> types.Part:
    """A function call part."""
    return types.Part(function_call=types.FunctionCall(id=call_id, name=name, args=args))


def response(call_id: str, name: str, value: dict[str, Any]) -> types.Part:
    """A function response part."""
    return types.Part(
        function_response=types.FunctionResponse(id=call_id, name=name, response=value)
    )


def tool_event(event_id: str, *parts: types.Part, state: dict[str, Any] | None = None) -> Event:
    """The event holding the tools' responses (authored by the agent, role user)."""
    return Event(
        id=event_id,
        invocation_id=INV,
        author="agent",
        content=types.Content(role="user", parts=list(parts)),
        actions=EventActions(state_delta=state or {}),
    )


def encode(events: list[Event], end: RunEnd | None = None, *, resumed: bool = False) -> list[Any]:
    """Encode a whole run; return its chunks (`[DONE]` as the string) in order."""
    encoder = AiSdkEncoder(INV, resumed=resumed)
    body = encoder.open()
    for event in events:
        if resumed and event.partial:
            body += encoder.partial(event.to_json())
        elif resumed:
            body += encoder.stored(1, event.to_json())
        else:
            body += encoder.event(event)
    body += encoder.close(end or RunEnd(INV, 9, "completed"))
    return parse(body)


def parse(body: bytes) -> list[Any]:
    """Split an SSE body into its `data:` payloads (JSON decoded; `[DONE]` kept as text)."""
    text_body = body.decode()
    assert text_body.endswith("\n\n")
    chunks: list[Any] = []
    for frame in text_body[:-2].split("\n\n"):
        assert frame.startswith("data: ") and "\n" not in frame, frame
        payload = frame[len("data: ") :]
        chunks.append(payload if payload == "[DONE]" else json.loads(payload))
    return chunks


START = {"type": "start", "messageId": INV}
STOP = [{"type": "finish", "finishReason": "stop"}, "[DONE]"]


def test_a_chat_answered_in_one_event() -> None:
    assert encode([model("ev1", text("Hello"))]) == [
        START,
        {"type": "start-step"},
        {"type": "text-start", "id": "ev1"},
        {"type": "text-delta", "id": "ev1", "delta": "Hello"},
        {"type": "text-end", "id": "ev1"},
        {"type": "finish-step"},
        *STOP,
    ]


def test_a_token_streamed_chat_sends_the_final_text_once() -> None:
    events = [
        model("ev1", text("Hel"), partial=True),
        model("ev1", text("lo"), partial=True),
        model("ev1", text("Hello")),
    ]
    assert encode(events) == [
        START,
        {"type": "start-step"},
        {"type": "text-start", "id": "ev1"},
        {"type": "text-delta", "id": "ev1", "delta": "Hel"},
        {"type": "text-delta", "id": "ev1", "delta": "lo"},
        {"type": "text-end", "id": "ev1"},
        {"type": "finish-step"},
        *STOP,
    ]


def test_a_tool_call_is_one_step_and_the_answer_after_it_another() -> None:
    events = [
        model("ev1", text("Let me look."), partial=True),
        model("ev1", text("Let me look."), call("fc1", "get_weather", {"city": "Paris"})),
        tool_event("ev2", response("fc1", "get_weather", {"forecast": "sunny"})),
        model("ev3", text("Sunny."), partial=True),
        model("ev3", text("Sunny.")),
    ]
    assert encode(events) == [
        START,
        {"type": "start-step"},
        {"type": "text-start", "id": "ev1"},
        {"type": "text-delta", "id": "ev1", "delta": "Let me look."},
        {"type": "text-end", "id": "ev1"},
        {
            "type": "tool-input-available",
            "toolCallId": "fc1",
            "toolName": "get_weather",
            "input": {"city": "Paris"},
            "dynamic": True,
        },
        {
            "type": "tool-output-available",
            "toolCallId": "fc1",
            "output": {"forecast": "sunny"},
            "dynamic": True,
        },
        {"type": "finish-step"},
        {"type": "start-step"},
        {"type": "text-start", "id": "ev3"},
        {"type": "text-delta", "id": "ev3", "delta": "Sunny."},
        {"type": "text-end", "id": "ev3"},
        {"type": "finish-step"},
        *STOP,
    ]


def test_a_state_delta_is_a_data_part() -> None:
    events = [
        model("ev1", call("fc1", "set_color", {"color": "blue"})),
        tool_event("ev2", response("fc1", "set_color", {"color": "blue"}), state={"color": "blue"}),
    ]
    assert encode(events)[3:] == [
        {
            "type": "tool-output-available",
            "toolCallId": "fc1",
            "output": {"color": "blue"},
            "dynamic": True,
        },
        {"type": "data-state-delta", "data": {"color": "blue"}},
        {"type": "finish-step"},
        *STOP,
    ]


def test_a_model_error_closes_the_open_text_then_reports_it() -> None:
    problem = {"status": 502, "code": "model_error", "detail": "the model backend is down"}
    events = [model("ev1", text("Hel"), partial=True)]
    assert encode(events, RunEnd(INV, 1, "error", problem)) == [
        START,
        {"type": "start-step"},
        {"type": "text-start", "id": "ev1"},
        {"type": "text-delta", "id": "ev1", "delta": "Hel"},
        {"type": "text-end", "id": "ev1"},
        {"type": "finish-step"},
        {"type": "error", "errorText": "the model backend is down"},
        {"type": "finish", "finishReason": "error"},
        "[DONE]",
    ]


def test_a_run_that_fails_before_any_output_is_start_error_finish() -> None:
    assert encode([], RunEnd(INV, None, "error", None)) == [
        START,
        {"type": "error", "errorText": "The run failed."},
        {"type": "finish", "finishReason": "error"},
        "[DONE]",
    ]


def test_a_cancelled_run_aborts_after_closing_what_is_open() -> None:
    events = [model("ev1", call("fc1", "slow_tool", {}))]
    assert encode(events, RunEnd(INV, 2, "cancelled")) == [
        START,
        {"type": "start-step"},
        {
            "type": "tool-input-available",
            "toolCallId": "fc1",
            "toolName": "slow_tool",
            "input": {},
            "dynamic": True,
        },
        {"type": "finish-step"},
        {"type": "abort", "reason": "cancelled"},
        {"type": "finish"},
        "[DONE]",
    ]


def test_an_error_shaped_tool_response_is_a_tool_output_error() -> None:
    events = [
        model("ev1", call("fc1", "get_weather", {})),
        tool_event("ev2", response("fc1", "get_weather", {"error": "ValueError: no city"})),
    ]
    assert encode(events)[3] == {
        "type": "tool-output-error",
        "toolCallId": "fc1",
        "errorText": "ValueError: no city",
        "dynamic": True,
    }


def test_results_of_unannounced_calls_and_the_users_events_are_not_sent() -> None:
    user = Event(
        invocation_id=INV,
        author="user",
        content=types.Content(role="user", parts=[response("old", "ask_human", {"a": 1})]),
    )
    events = [user, tool_event("ev2", response("unknown", "get_weather", {"x": 1}))]
    assert encode(events) == [START, *STOP]


def test_a_long_running_call_is_left_for_the_client_to_answer() -> None:
    events = [
        model("ev1", call("fc1", "ask_human", {"question": "?"}), long_running_tool_ids={"fc1"}),
        tool_event("ev2", response("fc1", "ask_human", {"status": "pending"})),
    ]
    assert encode(events) == [
        START,
        {"type": "start-step"},
        {
            "type": "tool-input-available",
            "toolCallId": "fc1",
            "toolName": "ask_human",
            "input": {"question": "?"},
            "dynamic": True,
        },
        {"type": "finish-step"},
        {"type": "finish", "finishReason": "tool-calls"},
        "[DONE]",
    ]


def test_thoughts_are_reasoning_parts() -> None:
    events = [
        model("ev1", text("hmm", thought=True), partial=True),
        model("ev1", text("ok"), partial=True),
        model("ev1", text("hmm", thought=True), text("ok")),
    ]
    assert encode(events)[1:-2] == [
        {"type": "start-step"},
        {"type": "reasoning-start", "id": "ev1"},
        {"type": "reasoning-delta", "id": "ev1", "delta": "hmm"},
        {"type": "reasoning-end", "id": "ev1"},
        {"type": "text-start", "id": "ev1-2"},
        {"type": "text-delta", "id": "ev1-2", "delta": "ok"},
        {"type": "text-end", "id": "ev1-2"},
        {"type": "finish-step"},
    ]


def test_a_resumed_stream_skips_partials_and_sends_each_final_text_whole() -> None:
    events = [
        model("ev1", text("lo"), partial=True),  # joined half-way through the response
        model("ev1", text("Hello")),
    ]
    assert encode(events, resumed=True) == [
        START,
        {"type": "start-step"},
        {"type": "text-start", "id": "ev1"},
        {"type": "text-delta", "id": "ev1", "delta": "Hello"},
        {"type": "text-end", "id": "ev1"},
        {"type": "finish-step"},
        *STOP,
    ]


def test_files_the_model_made_are_file_chunks() -> None:
    image = types.Part(inline_data=types.Blob(data=b"PNG", mime_type="image/png"))
    ref = types.Part(
        file_data=types.FileData(file_uri="https://x.test/a.pdf", mime_type="application/pdf")
    )
    assert encode([model("ev1", text("Here."), image, ref)])[1:-2] == [
        {"type": "start-step"},
        {"type": "text-start", "id": "ev1"},
        {"type": "text-delta", "id": "ev1", "delta": "Here."},
        {"type": "text-end", "id": "ev1"},
        {"type": "file", "url": "data:image/png;base64,UE5H", "mediaType": "image/png"},
        {"type": "file", "url": "https://x.test/a.pdf", "mediaType": "application/pdf"},
        {"type": "finish-step"},
    ]


def test_headers_and_keepalive() -> None:
    encoder = AiSdkEncoder(INV)
    assert (b"x-vercel-ai-ui-message-stream", b"v1") in encoder.headers
    assert dict(encoder.headers)[b"content-type"].startswith(b"text/event-stream")
    assert encoder.ping().startswith(b":")  # a comment: the client's parser ignores it
