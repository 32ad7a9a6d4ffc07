"""Golden streams of `/adk/run_sse` and `/adk/run` (the reference ADK framing), byte for byte.

Each run goes through the real route, run machinery and scripted agent; only the values that
change per run (uuids, timestamps) are replaced before comparing with the golden text.
"""

from __future__ import annotations

import json
import re

import httpx
from google.genai import types

from app.events.event import Event
from app.events.event_actions import EventActions
from app.server.wire import RunEnd
from app.server.wire.adk import AdkEncoder, error_frame
from app.server.wire.encoder import SSE_PING

_UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")
_TIMESTAMP = re.compile(r'"timestamp":[0-9.e+]+')
_ACTIONS = (
    '"actions":{"stateDelta":{},"artifactDelta":{},"requestedAuthConfigs":{},'
    '"requestedToolConfirmations":{}}'
)


def normalized(text: str) -> str:
    """The stream with its per-run values (uuids, timestamps) replaced by placeholders."""
    return _TIMESTAMP.sub('"timestamp":<t>', _UUID.sub("<id>", text))


async def run_sse(client: httpx.AsyncClient, text: str, *, streaming: bool = False) -> str:
    """Run `text` on session `s` through `/adk/run_sse`; return the normalized stream."""
    return normalized(await raw_sse(client, text, streaming=streaming))


async def raw_sse(client: httpx.AsyncClient, text: str, *, streaming: bool = False) -> str:
    """Run `text` on session `s` through `/adk/run_sse`; return the stream as sent."""
    created = await client.post("/adk/apps/scripted/users/u/sessions", json={"session_id": "s"})
    assert created.status_code in (200, 409), created.text
    body = {
        "appName": "scripted",
        "userId": "u",
        "sessionId": "s",
        "newMessage": {"role": "user", "parts": [{"text": text}]},
        "streaming": streaming,
        "stateDelta": None,
    }
    response = await client.post("/adk/run_sse", json=body, headers={"Accept": "text/event-stream"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "text/event-stream; charset=utf-8"
    return response.text


def model_text(text: str, *, seq: int | None = None, partial: bool = False) -> str:
    flag = '"partial":true,' if partial else ""
    tail = f',"seq":{seq}' if seq is not None else ""
    return (
        f'data: {{"content":{{"parts":[{{"text":"{text}"}}],"role":"model"}},{flag}"id":"<id>",'
        f'"invocationId":"e-<id>","author":"scripted",{_ACTIONS},"timestamp":<t>{tail}}}\n\n'
    )


async def test_chat_is_one_data_frame_and_nothing_else(client: httpx.AsyncClient) -> None:
    assert await run_sse(client, "chat hi") == model_text("ok", seq=2)


async def test_tool_call_streams_call_response_and_answer(client: httpx.AsyncClient) -> None:
    call = (
        'data: {"content":{"parts":[{"functionCall":{"id":"adk-<id>","args":{"city":"Paris"},'
        '"name":"get_weather"}}],"role":"model"},"id":"<id>","invocationId":"e-<id>",'
        f'"author":"scripted",{_ACTIONS},"timestamp":<t>,"seq":2}}\n\n'
    )
    response = (
        'data: {"content":{"parts":[{"functionResponse":{"id":"adk-<id>","name":"get_weather",'
        '"response":{"city":"Paris","forecast":"sunny"}}}],"role":"user"},"id":"<id>",'
        f'"invocationId":"e-<id>","author":"scripted",{_ACTIONS},"timestamp":<t>,"seq":3}}\n\n'
    )
    stream = await run_sse(client, "tool please")
    assert stream == call + response + model_text("It is sunny in Paris.", seq=4)


async def test_token_streaming_sends_partials_then_the_final_event(
    client: httpx.AsyncClient,
) -> None:
    partials = "".join(
        model_text(word, partial=True) for word in ("one ", "two ", "three ", "four")
    )
    stream = await run_sse(client, "stream it", streaming=True)
    assert stream == partials + model_text("one two three four", seq=2)


async def test_model_error_ends_with_the_reference_error_frame(client: httpx.AsyncClient) -> None:
    stream = await run_sse(client, "boom")
    assert stream == (
        'data: {"error": "the model backend is down", "errorCode": "model_error", '
        '"errorMessage": "the model backend is down"}\n\n'
    )


async def test_error_after_events_comes_last(client: httpx.AsyncClient) -> None:
    stream = await raw_sse(client, "crash now")
    frames = stream.split("\n\n")
    assert frames[-1] == ""
    assert [json.loads(f.removeprefix("data: ")).get("errorCode") for f in frames[:-1]] == [
        None,
        None,
        "internal",
    ]
    assert "secret" not in stream


async def test_artifact_delta_with_content_is_sent_as_two_frames(
    client: httpx.AsyncClient,
) -> None:
    stream = await raw_sse(client, "save it")
    events = [json.loads(f.removeprefix("data: ")) for f in stream.split("\n\n")[:-1]]
    assert [sorted(e["actions"]["artifactDelta"]) for e in events] == [[], [], ["note.txt"], []]
    assert "functionResponse" in events[1]["content"]["parts"][0]
    assert "content" not in events[2] and events[2]["id"] == events[1]["id"]


async def test_run_answers_a_plain_list_of_the_stored_events(client: httpx.AsyncClient) -> None:
    await client.post("/adk/apps/scripted/users/u/sessions", json={"sessionId": "s"})
    body = {
        "app_name": "scripted",
        "user_id": "u",
        "session_id": "s",
        "new_message": {"role": "user", "parts": [{"text": "stream"}]},
        "streaming": True,
    }
    response = await client.post("/adk/run", json=body)
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert normalized(response.text) == "[" + model_text("one two three four", seq=2)[6:-2] + "]"


# --- the encoder alone --------------------------------------------------------------------------


def _saved(seq: int) -> Event:
    return Event(
        author="agent",
        invocation_id="e-1",
        content=types.Content(role="user", parts=[types.Part(text="saved")]),
        actions=EventActions(artifact_delta={"a.txt": 0}),
        seq=seq,
    )


def test_stored_json_is_replayed_as_is_unless_it_needs_the_split() -> None:
    encoder = AdkEncoder()
    raw = '{"id":"x","author":"agent","actions":{"artifactDelta":{}},"seq":4}'
    assert encoder.stored(4, raw) == b"data: " + raw.encode() + b"\n\n"
    assert encoder.partial('{"partial":true}') == b'data: {"partial":true}\n\n'
    assert encoder.ping() == SSE_PING  # an SSE comment: both reference clients skip it
    split = encoder.stored(5, _saved(5).to_json()).decode().split("\n\n")
    assert len(split) == 3 and split[2] == ""
    assert encoder.event(_saved(6)).count(b"data: ") == 2
    saved = _saved(6)
    unsplit = AdkEncoder(split_artifacts=False)
    assert unsplit.event(saved) == b"data: " + saved.to_json().encode() + b"\n\n"


def test_close_sends_nothing_on_success_and_one_error_frame_otherwise() -> None:
    encoder = AdkEncoder()
    assert encoder.close(RunEnd("e-1", 3, "completed")) == b""
    problem = {"status": 409, "code": "run_lost", "detail": "lost"}
    assert encoder.close(RunEnd("e-1", 3, "error", problem)) == error_frame(problem)
    assert encoder.close(RunEnd("e-1", 3, "cancelled")) == (
        b'data: {"error": "The run was cancelled.", "errorCode": "run_cancelled", '
        b'"errorMessage": "The run was cancelled."}\n\n'
    )
