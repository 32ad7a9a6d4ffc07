"""POST ...:run: SSE framing, JSON mode, errors before and after the stream starts."""

from __future__ import annotations

import gc
import json
from typing import Any

import httpx

from .helpers import assert_problem, message, parse_sse, services_of

BASE = "/apps/scripted/users/u1/sessions"


async def _sse(client: httpx.AsyncClient, sid: str, body: dict[str, Any]) -> httpx.Response:
    return await client.post(f"{BASE}/{sid}:run", json=body)


async def _stored(client: httpx.AsyncClient, sid: str) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = (await client.get(f"{BASE}/{sid}/events")).json()["events"]
    return events


async def test_chat_run_streams_stored_events_with_seq_ids(client: httpx.AsyncClient) -> None:
    await client.post(BASE, json={"sessionId": "s"})
    response = await _sse(client, "s", {"newMessage": message("chat")})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    frames = parse_sse(response.text)
    [model_frame, end] = frames
    event = json.loads(model_frame["data"])
    assert model_frame["id"] == "2" == str(event["seq"])
    assert event["content"]["parts"] == [{"text": "ok"}]
    assert end["event"] == "end"
    assert json.loads(end["data"]) == {
        "invocationId": event["invocationId"],
        "lastSeq": 2,
        "reason": "completed",
    }
    stored = await _stored(client, "s")
    assert [e["seq"] for e in stored] == [1, 2]
    assert stored[1] == event


async def test_tool_run_streams_call_response_and_text(client: httpx.AsyncClient) -> None:
    await client.post(BASE, json={"sessionId": "s"})
    frames = parse_sse((await _sse(client, "s", {"newMessage": message("tool")})).text)
    events = [json.loads(f["data"]) for f in frames if "event" not in f]
    assert [f["id"] for f in frames[:-1]] == ["2", "3", "4"]
    assert events[0]["content"]["parts"][0]["functionCall"]["name"] == "get_weather"
    assert events[1]["content"]["parts"][0]["functionResponse"]["response"]["forecast"] == "sunny"
    assert events[2]["content"]["parts"][0]["text"] == "It is sunny in Paris."
    assert [f.get("event") for f in frames].count("end") == 1


async def test_token_streaming_sends_partials_without_ids(client: httpx.AsyncClient) -> None:
    await client.post(BASE, json={"sessionId": "s"})
    body = {"newMessage": message("stream please"), "streaming": True}
    frames = parse_sse((await _sse(client, "s", body)).text)
    partials = [f for f in frames if "id" not in f and "event" not in f]
    assert len(partials) == 4
    for frame in partials:
        assert json.loads(frame["data"])["partial"] is True
    final = frames[-2]
    assert final["id"] == "2"
    assert json.loads(final["data"])["content"]["parts"][0]["text"] == "one two three four"
    assert json.loads(frames[-1]["data"])["lastSeq"] == 2
    assert [e["seq"] for e in await _stored(client, "s")] == [1, 2]


async def test_json_mode_returns_stored_events_at_the_end(client: httpx.AsyncClient) -> None:
    await client.post(BASE, json={"sessionId": "s"})
    response = await client.post(
        f"{BASE}/s:run",
        json={"newMessage": message("stream"), "streaming": True},
        headers={"accept": "application/json"},
    )
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    events = response.json()["events"]
    assert [e["seq"] for e in events] == [2]
    assert all(not e.get("partial") for e in events)


async def test_accept_event_stream_wins_over_json(client: httpx.AsyncClient) -> None:
    await client.post(BASE, json={"sessionId": "s"})
    response = await client.post(
        f"{BASE}/s:run",
        json={"newMessage": message("chat")},
        headers={"accept": "text/event-stream, application/json"},
    )
    assert response.headers["content-type"].startswith("text/event-stream")


async def test_run_on_missing_session_is_404_before_streaming(client: httpx.AsyncClient) -> None:
    response = await _sse(client, "missing", {"newMessage": message("chat")})
    assert_problem(response, 404, "session_not_found")


async def test_create_session_flag_creates_the_session(client: httpx.AsyncClient) -> None:
    body = {"newMessage": message("chat"), "createSession": True}
    response = await _sse(client, "fresh", body)
    assert response.status_code == 200
    assert parse_sse(response.text)[-1]["event"] == "end"
    assert (await client.get(f"{BASE}/fresh")).json()["lastSeq"] == 2


async def test_auto_create_session_setting_creates_the_session(make_client) -> None:  # type: ignore[no-untyped-def]
    async with make_client(auto_create_session=True) as c:
        response = await c.post(f"{BASE}/auto:run", json={"newMessage": message("chat")})
        assert response.status_code == 200
        assert (await c.get(f"{BASE}/auto")).status_code == 200


async def test_run_on_unknown_or_broken_app(client: httpx.AsyncClient) -> None:
    body = {"newMessage": message("chat")}
    assert_problem(
        await client.post("/apps/nope/users/u/sessions/s:run", json=body), 404, "app_not_found"
    )
    assert_problem(
        await client.post("/apps/broken/users/u/sessions/s:run", json=body),
        503,
        "app_unavailable",
    )


async def test_state_delta_only_run_stores_the_state(client: httpx.AsyncClient) -> None:
    await client.post(BASE, json={"sessionId": "s"})
    response = await _sse(client, "s", {"stateDelta": {"mood": "happy"}})
    assert response.status_code == 200
    session = (await client.get(f"{BASE}/s")).json()
    assert session["state"]["mood"] == "happy"


async def test_run_config_custom_metadata_reaches_events(client: httpx.AsyncClient) -> None:
    await client.post(BASE, json={"sessionId": "s"})
    body = {"newMessage": message("chat"), "runConfig": {"customMetadata": {"traceTag": "x"}}}
    frames = parse_sse((await _sse(client, "s", body)).text)
    assert json.loads(frames[0]["data"])["customMetadata"] == {"traceTag": "x"}


async def test_max_llm_calls_stops_a_looping_run_in_band(client: httpx.AsyncClient) -> None:
    await client.post(BASE, json={"sessionId": "s"})
    body = {"newMessage": message("loop"), "runConfig": {"maxLlmCalls": 2}}
    frames = parse_sse((await _sse(client, "s", body)).text)
    error = next(f for f in frames if f.get("event") == "error")
    assert json.loads(error["data"])["code"] == "llm_calls_limit_exceeded"
    assert json.loads(frames[-1]["data"])["reason"] == "error"


async def test_model_error_on_the_first_call_is_in_band(client: httpx.AsyncClient) -> None:
    # The user's message is stored before the model is called: the failure must say so.
    await client.post(BASE, json={"sessionId": "s"})
    response = await _sse(client, "s", {"newMessage": message("boom")})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    error, end = parse_sse(response.text)
    assert error["event"] == "error"
    problem = json.loads(error["data"])
    assert (problem["status"], problem["code"]) == (502, "model_error")
    assert "down" in problem["detail"]
    stored = await _stored(client, "s")
    [user_event] = stored
    assert user_event["author"] == "user"
    assert user_event["content"]["parts"] == [{"text": "boom"}]
    assert json.loads(end["data"]) == {
        "invocationId": user_event["invocationId"],
        "lastSeq": None,
        "reason": "error",
    }
    # The session stays usable.
    assert (await _sse(client, "s", {"newMessage": message("chat")})).status_code == 200


async def test_unexpected_error_on_the_first_call_is_in_band(client: httpx.AsyncClient) -> None:
    await client.post(BASE, json={"sessionId": "s"})
    response = await _sse(client, "s", {"newMessage": message("raise")})
    assert response.status_code == 200
    error, end = parse_sse(response.text)
    assert json.loads(error["data"])["code"] == "internal"
    assert "secret" not in response.text
    assert json.loads(end["data"])["reason"] == "error"
    assert [e["author"] for e in await _stored(client, "s")] == ["user"]


async def test_json_mode_first_call_error_is_the_problem_with_no_events(
    client: httpx.AsyncClient,
) -> None:
    await client.post(BASE, json={"sessionId": "s"})
    for text, status, code in (("boom", 502, "model_error"), ("raise", 500, "internal")):
        response = await client.post(
            f"{BASE}/s:run",
            json={"newMessage": message(text)},
            headers={"accept": "application/json"},
        )
        body = assert_problem(response, status, code)
        assert body["events"] == []
    assert [e["content"]["parts"][0]["text"] for e in await _stored(client, "s")] == [
        "boom",
        "raise",
    ]


async def test_first_call_error_on_a_created_session_is_in_band(
    client: httpx.AsyncClient,
) -> None:
    body = {"newMessage": message("boom"), "createSession": True}
    response = await _sse(client, "new", body)
    assert response.status_code == 200
    assert parse_sse(response.text)[0]["event"] == "error"
    assert [e["author"] for e in await _stored(client, "new")] == ["user"]


async def test_error_before_anything_is_stored_stays_plain(client: httpx.AsyncClient) -> None:
    response = await _sse(client, "nope", {"newMessage": message("boom")})
    assert_problem(response, 404, "session_not_found")
    assert (await client.get(f"{BASE}/nope")).status_code == 404


async def test_model_error_mid_stream_is_an_error_frame_then_end(client: httpx.AsyncClient) -> None:
    await client.post(BASE, json={"sessionId": "s"})
    response = await _sse(client, "s", {"newMessage": message("fail")})
    assert response.status_code == 200
    frames = parse_sse(response.text)
    assert [f.get("id") for f in frames[:2]] == ["2", "3"]
    error, end = frames[-2], frames[-1]
    assert error["event"] == "error"
    problem = json.loads(error["data"])
    assert problem["status"] == 502
    assert problem["code"] == "model_error"
    assert problem["title"] == "Bad Gateway"
    assert end["event"] == "end"
    assert json.loads(end["data"])["reason"] == "error"
    assert json.loads(end["data"])["lastSeq"] == 3


async def test_unexpected_error_mid_stream_hides_details(client: httpx.AsyncClient) -> None:
    await client.post(BASE, json={"sessionId": "s"})
    response = await _sse(client, "s", {"newMessage": message("crash")})
    frames = parse_sse(response.text)
    problem = json.loads(frames[-2]["data"])
    assert problem["code"] == "internal"
    assert problem["status"] == 500
    assert "secret" not in response.text
    assert "Traceback" not in response.text


async def test_json_mode_error_carries_the_stored_events(client: httpx.AsyncClient) -> None:
    await client.post(BASE, json={"sessionId": "s"})
    response = await client.post(
        f"{BASE}/s:run",
        json={"newMessage": message("fail")},
        headers={"accept": "application/json"},
    )
    body = assert_problem(response, 502, "model_error")
    assert [e["seq"] for e in body["events"]] == [2, 3]


async def test_second_run_on_a_busy_session_is_409(client: httpx.AsyncClient) -> None:
    await client.post(BASE, json={"sessionId": "s"})
    registry = services_of(client).runners
    key = registry.claim_session("scripted", "u1", "s")  # as if a run were streaming
    try:
        response = await _sse(client, "s", {"newMessage": message("chat")})
        assert_problem(response, 409, "run_in_progress")
    finally:
        registry.release_session(key)
    assert (await _sse(client, "s", {"newMessage": message("chat")})).status_code == 200


async def test_run_rejects_bad_bodies(client: httpx.AsyncClient) -> None:
    await client.post(BASE, json={"sessionId": "s"})
    bad_bodies: list[Any] = [
        {},
        {"streaming": True},
        {"newMessage": message("hi"), "unknown": 1},
        {"newMessage": {"role": "user", "parts": []}},
        {"newMessage": {"parts": [{"txt": "typo"}]}},
        {"newMessage": "hi"},
        {"newMessage": message("hi"), "streaming": "very"},
        {"newMessage": message("hi"), "runConfig": {"maxLlmCalls": 0}},
        {"newMessage": message("hi"), "runConfig": {"maxLlmCalls": 1001}},
        {"newMessage": message("hi"), "runConfig": {"streamingMode": "bidi"}},
        {"newMessage": message("hi"), "runConfig": {"speechConfig": {}}},
        {"newMessage": {"parts": [{"functionCall": {"name": "get_weather", "args": {}}}]}},
        [1, 2],
        "text",
        None,
    ]
    for body in bad_bodies:
        response = await client.post(f"{BASE}/s:run", json=body)
        assert_problem(response, 422, "invalid_request")
    # Nothing was run or stored.
    assert (await client.get(f"{BASE}/s")).json()["lastSeq"] == 0


async def test_run_message_role_is_forced_to_user(client: httpx.AsyncClient) -> None:
    await client.post(BASE, json={"sessionId": "s"})
    body = {"newMessage": {"role": "model", "parts": [{"text": "chat"}]}}
    assert (await _sse(client, "s", body)).status_code == 200
    [user_event, _] = await _stored(client, "s")
    assert user_event["author"] == "user"
    assert user_event["content"]["role"] == "user"


async def test_runs_leave_no_reference_cycles_behind(client: httpx.AsyncClient) -> None:
    # The server raises the gc thresholds on the premise that a run's objects are freed by
    # reference counting; events caught in a cycle would pile up until a full collection.
    await client.post(BASE, json={"sessionId": "gc"})
    gc.collect()
    gc.disable()
    gc.set_debug(gc.DEBUG_SAVEALL)
    try:
        for text in ("chat", "tool", "chat"):
            response = await _sse(client, "gc", {"newMessage": message(text)})
            assert response.status_code == 200
        await client.delete(f"{BASE}/gc")
        gc.collect()
        ours = [o for o in gc.garbage if type(o).__module__.startswith(("app.", "google.genai"))]
    finally:
        gc.set_debug(0)
        gc.garbage.clear()
        gc.enable()
    assert ours == []
