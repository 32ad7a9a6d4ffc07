"""SSE frame encoding."""

from __future__ import annotations

import json

from google.genai import types

from app.events.event import Event
from app.server.wire import RunEnd
from app.server.wire import native as _sse
from app.server.wire.encoder import SSE_PING


def _event(**fields: object) -> Event:
    content = types.Content(role="model", parts=[types.Part(text="a\nb")])
    return Event(author="agent", invocation_id="e-1", content=content, **fields)  # type: ignore[arg-type]


def test_stored_event_frame_has_its_seq_as_id() -> None:
    event = _event(seq=7)
    frame = _sse.event_frame(event)
    head, data = frame.decode().split("\n", 1)
    assert head == "id: 7"
    assert data.startswith("data: ") and data.endswith("\n\n")
    assert data.count("\n") == 2  # one data line: JSON escapes the newline in the text
    assert json.loads(data[len("data: ") :]) == event.to_dict()


def test_partial_event_frame_has_no_id() -> None:
    frame = _sse.event_frame(_event(partial=True)).decode()
    assert frame.startswith("data: ")
    assert "id:" not in frame.split("{", 1)[0]


def test_error_and_end_frames() -> None:
    assert _sse.error_frame({"code": "x"}) == b'event: error\ndata: {"code":"x"}\n\n'
    assert _sse.end_frame("e-1", 3, "completed") == (
        b'event: end\ndata: {"invocationId":"e-1","lastSeq":3,"reason":"completed"}\n\n'
    )
    assert SSE_PING == b": ping\n\n"


def test_native_encoder_replays_stored_json_as_is_and_closes_with_error_then_end() -> None:
    encoder = _sse.NativeEncoder()
    raw = '{"id":"x","seq":4,"author":"agent"}'
    assert encoder.stored(4, raw) == b"id: 4\ndata: " + raw.encode() + b"\n\n"
    assert encoder.partial('{"partial":true}') == b'data: {"partial":true}\n\n'
    tail = encoder.close(RunEnd("e-1", 4, "error", {"code": "model_error"})).decode()
    assert tail == (
        'event: error\ndata: {"code":"model_error"}\n\n'
        'event: end\ndata: {"invocationId":"e-1","lastSeq":4,"reason":"error"}\n\n'
    )
