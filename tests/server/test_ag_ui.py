"""AG-UI route: golden event streams from the scripted agent, and bad input.

Every frame is validated with `ag_ui.core.Event` (the protocol package's own models), and each
stream is checked as an exact sequence, with the rules of `@ag-ui/client`'s verifier.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest
from ag_ui.core import Event as AgUiEvent
from pydantic import TypeAdapter

from app.runs import RunStatus
from tests.server.helpers import assert_problem, services_of

URL = "/apps/scripted/users/u1/ag-ui"
_EVENT = TypeAdapter(AgUiEvent)


def run_input(
    thread: str, *messages: dict[str, Any], run: str = "r1", **extra: Any
) -> dict[str, Any]:
    """A RunAgentInput as `@ag-ui/client` 1.0 sends it."""
    return {
        "threadId": thread,
        "runId": run,
        "protocolVersion": "1.0",
        "state": {},
        "messages": list(messages),
        "tools": [],
        "context": [],
        "forwardedProps": {},
        **extra,
    }


def user(id_: str, text: str) -> dict[str, Any]:
    """A user message."""
    return {"id": id_, "role": "user", "content": text}


async def stream(
    client: httpx.AsyncClient, body: dict[str, Any], url: str = URL
) -> list[dict[str, Any]]:
    """POST the input; return the events (each validated as an AG-UI event, LF framing)."""
    response = await client.post(url, json=body)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/event-stream")
    text = response.text
    assert "\r" not in text
    events = []
    for block in text.split("\n\n"):
        if not block or block.startswith(":"):
            continue
        assert block.startswith("data: ") and "\n" not in block, block
        data = block[len("data: ") :]
        _EVENT.validate_json(data)
        events.append(json.loads(data))
    verify(events)
    return events


def verify(events: list[dict[str, Any]]) -> None:
    """The client verifier's rules: RUN_STARTED first, one terminal event, nothing left open."""
    assert events[0]["type"] == "RUN_STARTED"
    open_text: set[str] = set()
    open_tools: set[str] = set()
    for event in events[1:-1]:
        assert event["type"] not in ("RUN_STARTED", "RUN_FINISHED", "RUN_ERROR"), events
        kind, mid, tid = event["type"], event.get("messageId"), event.get("toolCallId")
        if kind == "TEXT_MESSAGE_START":
            assert mid not in open_text
            open_text.add(mid)
        elif kind == "TEXT_MESSAGE_CONTENT":
            assert mid in open_text
        elif kind == "TEXT_MESSAGE_END":
            open_text.remove(mid)
        elif kind == "TOOL_CALL_START":
            open_tools.add(tid)
        elif kind == "TOOL_CALL_ARGS":
            assert tid in open_tools
        elif kind == "TOOL_CALL_END":
            open_tools.remove(tid)
    assert events[-1]["type"] in ("RUN_FINISHED", "RUN_ERROR")
    assert not open_text and not open_tools, events


def shape(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """Each event's type with its content fields (ids left out)."""
    out: list[tuple[Any, ...]] = []
    for event in events:
        kind = event["type"]
        if kind == "TEXT_MESSAGE_CONTENT":
            out.append((kind, event["delta"]))
        elif kind == "TOOL_CALL_START":
            out.append((kind, event["toolCallName"]))
        elif kind in ("TOOL_CALL_ARGS", "STATE_DELTA"):
            out.append((kind, event["delta"]))
        elif kind == "TOOL_CALL_RESULT":
            out.append((kind, event["content"]))
        elif kind == "STATE_SNAPSHOT":
            out.append((kind, event["snapshot"]))
        elif kind == "RUN_ERROR":
            out.append((kind, event.get("code")))
        else:
            out.append((kind,))
    return out


async def test_chat(client: httpx.AsyncClient) -> None:
    events = await stream(
        client, run_input("t-chat", user("u1", "chat hi"), forwardedProps={"streaming": False})
    )
    assert shape(events) == [
        ("RUN_STARTED",),
        ("STATE_SNAPSHOT", {}),
        ("TEXT_MESSAGE_START",),
        ("TEXT_MESSAGE_CONTENT", "ok"),
        ("TEXT_MESSAGE_END",),
        ("RUN_FINISHED",),
    ]
    assert events[0] == {"type": "RUN_STARTED", "threadId": "t-chat", "runId": "r1"}
    assert events[-1] == {"type": "RUN_FINISHED", "threadId": "t-chat", "runId": "r1"}
    assert events[2]["role"] == "assistant"
    # The message id is the stored event's id (the client echoes it back next turn).
    session = await services_of(client).sessions.get_session(
        app_name="scripted", user_id="u1", session_id="t-chat"
    )
    assert session is not None
    assert events[2]["messageId"] == session.events[-1].id
    assert session.events[0].custom_metadata == {"agUiRunId": "r1", "agUiMessageIds": ["u1"]}


async def test_token_streamed_chat_sends_the_text_once(client: httpx.AsyncClient) -> None:
    events = await stream(client, run_input("t-stream", user("u1", "stream please")))
    assert shape(events) == [
        ("RUN_STARTED",),
        ("STATE_SNAPSHOT", {}),
        ("TEXT_MESSAGE_START",),
        ("TEXT_MESSAGE_CONTENT", "one "),
        ("TEXT_MESSAGE_CONTENT", "two "),
        ("TEXT_MESSAGE_CONTENT", "three "),
        ("TEXT_MESSAGE_CONTENT", "four"),
        ("TEXT_MESSAGE_END",),
        ("RUN_FINISHED",),
    ]
    assert len({e["messageId"] for e in events if "messageId" in e}) == 1


async def test_tool_call(client: httpx.AsyncClient) -> None:
    events = await stream(client, run_input("t-tool", user("u1", "tool weather")))
    assert shape(events) == [
        ("RUN_STARTED",),
        ("STATE_SNAPSHOT", {}),
        ("TOOL_CALL_START", "get_weather"),
        ("TOOL_CALL_ARGS", '{"city":"Paris"}'),
        ("TOOL_CALL_END",),
        ("TOOL_CALL_RESULT", '{"city":"Paris","forecast":"sunny"}'),
        ("TEXT_MESSAGE_START",),
        *[("TEXT_MESSAGE_CONTENT", w) for w in ("It ", "is ", "sunny ", "in ", "Paris.")],
        ("TEXT_MESSAGE_END",),
        ("RUN_FINISHED",),
    ]
    start, result = events[2], events[5]
    assert result["toolCallId"] == start["toolCallId"]
    assert start["parentMessageId"] != result["messageId"]


async def test_state_delta_and_snapshot(client: httpx.AsyncClient) -> None:
    body = run_input("t-state", user("u1", "state blue"), forwardedProps={"streaming": False})
    events = await stream(client, body)
    assert shape(events) == [
        ("RUN_STARTED",),
        ("STATE_SNAPSHOT", {}),
        ("TOOL_CALL_START", "set_color"),
        ("TOOL_CALL_ARGS", '{"color":"blue"}'),
        ("TOOL_CALL_END",),
        ("TOOL_CALL_RESULT", '{"color":"blue"}'),
        ("STATE_DELTA", [{"op": "add", "path": "/color", "value": "blue"}]),
        ("TEXT_MESSAGE_START",),
        ("TEXT_MESSAGE_CONTENT", "Noted: blue."),
        ("TEXT_MESSAGE_END",),
        ("RUN_FINISHED",),
    ]
    # The next run starts from the stored state.
    history = [user("u1", "state blue"), user("u2", "chat")]
    events = await stream(client, run_input("t-state", *history, run="r2"))
    assert events[1] == {"type": "STATE_SNAPSHOT", "snapshot": {"color": "blue"}}


async def test_long_running_tool_answered_by_a_tool_message(client: httpx.AsyncClient) -> None:
    url = "/apps/handoff/users/u1/ag-ui"
    body = run_input("t-ask", user("u1", "Which city?"), forwardedProps={"streaming": False})
    events = await stream(client, body, url)
    assert shape(events) == [
        ("RUN_STARTED",),
        ("STATE_SNAPSHOT", {}),
        ("TOOL_CALL_START", "ask_human"),
        ("TOOL_CALL_ARGS", '{"question":"Which city?"}'),
        ("TOOL_CALL_END",),
        ("RUN_FINISHED",),
    ]
    call = events[2]
    history = [
        user("u1", "Which city?"),
        {
            "id": call["parentMessageId"],
            "role": "assistant",
            "toolCalls": [
                {
                    "id": call["toolCallId"],
                    "type": "function",
                    "function": {"name": "ask_human", "arguments": '{"question":"Which city?"}'},
                }
            ],
        },
        {"id": "t1", "role": "tool", "toolCallId": call["toolCallId"], "content": "Paris"},
    ]
    body = run_input("t-ask", *history, run="r2", forwardedProps={"streaming": False})
    events = await stream(client, body, url)
    assert shape(events)[2:] == [
        ("TEXT_MESSAGE_START",),
        ("TEXT_MESSAGE_CONTENT", "You said: Paris"),
        ("TEXT_MESSAGE_END",),
        ("RUN_FINISHED",),
    ]
    stored = await services_of(client).sessions.get_session(
        app_name="handoff", user_id="u1", session_id="t-ask"
    )
    assert stored is not None
    users = [e for e in stored.events if e.author == "user"]
    assert len(users) == 2  # the resent question was not stored again
    response = users[1].get_function_responses()[0]
    assert (response.id, response.name, response.response) == (
        call["toolCallId"],
        "ask_human",
        {"result": "Paris"},
    )
    # A JSON object answer is the response itself; an answered call is history.
    history.append({"id": events[2]["messageId"], "role": "assistant", "content": "x"})
    response = await client.post(url, json=run_input("t-ask", *history, run="r3"))
    assert_problem(response, 422, "invalid_request")


async def test_model_error_is_a_terminal_run_error(client: httpx.AsyncClient) -> None:
    events = await stream(client, run_input("t-boom", user("u1", "boom")))
    assert shape(events) == [("RUN_STARTED",), ("STATE_SNAPSHOT", {}), ("RUN_ERROR", "model_error")]
    assert events[-1]["message"]
    # The failed message was stored: the next run sends only the new one.
    history = [user("u1", "boom"), user("u2", "chat again")]
    events = await stream(client, run_input("t-boom", *history, run="r2"))
    assert events[-1]["type"] == "RUN_FINISHED"
    stored = await services_of(client).sessions.get_session(
        app_name="scripted", user_id="u1", session_id="t-boom"
    )
    assert stored is not None
    texts = [e.content.parts[0].text for e in stored.events if e.author == "user" and e.content]
    assert texts == ["boom", "chat again"]


async def test_history_already_seen_is_not_stored_again(client: httpx.AsyncClient) -> None:
    events = await stream(client, run_input("t-seen", user("u1", "chat one")))
    reply = events[2]["messageId"]
    history = [
        user("u1", "chat one"),
        {"id": reply, "role": "assistant", "content": "ok"},
        user("u2", "chat two"),
    ]
    await stream(client, run_input("t-seen", *history, run="r2"))
    stored = await services_of(client).sessions.get_session(
        app_name="scripted", user_id="u1", session_id="t-seen"
    )
    assert stored is not None
    texts = [e.content.parts[0].text for e in stored.events if e.author == "user" and e.content]
    assert texts == ["chat one", "chat two"]
    # Nothing new at all is refused before anything is stored.
    response = await client.post(URL, json=run_input("t-seen", *history, run="r3"))
    body = assert_problem(response, 422, "invalid_request")
    assert body["errors"][0]["loc"] == ["body", "messages"]


async def test_history_from_elsewhere_sends_only_its_trailing_user_messages(
    client: httpx.AsyncClient,
) -> None:
    history = [
        {"id": "s1", "role": "system", "content": "be nice"},
        user("a", "chat first"),
        {"id": "b", "role": "assistant", "content": "hello"},
        user("c", "chat"),
        user("d", "stream"),
    ]
    await stream(client, run_input("t-new", *history))
    stored = await services_of(client).sessions.get_session(
        app_name="scripted", user_id="u1", session_id="t-new"
    )
    assert stored is not None
    first = stored.events[0]
    assert first.content is not None
    assert [p.text for p in first.content.parts or []] == ["chat", "stream"]


@pytest.mark.parametrize(
    ("body", "loc"),
    [
        ({"runId": "r", "messages": []}, ["body", "threadId"]),
        (run_input("a/b", user("u", "chat")), ["body", "threadId"]),
        (run_input("..", user("u", "chat")), ["body", "threadId"]),
        (run_input("x" * 129, user("u", "chat")), ["body", "threadId"]),
        (run_input("t"), ["body", "messages"]),
        ({**run_input("t", user("u", "chat")), "messages": "hi"}, ["body", "messages"]),
        (run_input("t", {"id": "u", "role": "robot", "content": "x"}), ["body", "messages", "0"]),
        (run_input("t", user("u", "")), ["body", "messages", "0", "content"]),
        (
            run_input("t", {"id": "x", "role": "tool", "toolCallId": "nope", "content": "1"}),
            ["body", "messages", "0", "toolCallId"],
        ),
        (
            run_input(
                "t",
                {
                    "id": "u",
                    "role": "user",
                    "content": [
                        {
                            "type": "image",
                            "source": {"type": "data", "value": "!!", "mimeType": "x"},
                        }
                    ],
                },
            ),
            ["body", "messages", "0", "content", "0", "source", "value"],
        ),
        (
            run_input("t", user("u", "chat"), forwardedProps={"multitaskStrategy": "wait"}),
            ["body", "forwardedProps", "multitaskStrategy"],
        ),
        (
            run_input("t", user("u", "chat"), forwardedProps={"streaming": "loud"}),
            ["body", "forwardedProps", "streaming"],
        ),
    ],
)
async def test_bad_input_is_a_422(
    client: httpx.AsyncClient, body: dict[str, Any], loc: list[str]
) -> None:
    response = await client.post(URL, json=body)
    problem = assert_problem(response, 422, "invalid_request")
    assert problem["errors"][0]["loc"][: len(loc)] == loc, problem


async def test_not_json_and_unknown_app(client: httpx.AsyncClient) -> None:
    response = await client.post(URL, content=b"{", headers={"content-type": "application/json"})
    assert_problem(response, 422, "invalid_request")
    response = await client.post(URL, content=b"x", headers={"content-type": "text/plain"})
    assert_problem(response, 415, "unsupported_media_type")
    response = await client.post(
        "/apps/nope/users/u1/ag-ui", json=run_input("t", user("u", "chat"))
    )
    assert_problem(response, 404, "app_not_found")


async def test_busy_thread_is_a_409_before_anything_is_stored(client: httpx.AsyncClient) -> None:
    services = services_of(client)
    await services.sessions.create_session(app_name="scripted", user_id="u1", session_id="t-busy")
    active = await services.runs.begin(("scripted", "u1", "t-busy"), "e-other")
    try:
        response = await client.post(URL, json=run_input("t-busy", user("u", "chat")))
        assert_problem(response, 409, "run_in_progress")
    finally:
        await services.runs.finish(active, RunStatus.COMPLETED)
    stored = await services.sessions.get_session(
        app_name="scripted", user_id="u1", session_id="t-busy"
    )
    assert stored is not None and stored.events == []


async def test_the_users_quota_applies_as_on_run(make_client: Any) -> None:
    async with make_client(run_rate="1/minute") as client:
        await stream(client, run_input("quota-1", user("m1", "chat")))
        refused = await client.post(URL, json=run_input("quota-2", user("m2", "chat")))
        assert_problem(refused, 429, "rate_limited")
        assert int(refused.headers["retry-after"]) >= 1
        assert refused.headers["ratelimit-remaining"] == "0"
        sessions = await client.get("/apps/scripted/users/u1/sessions/quota-2")
        assert sessions.status_code == 404  # nothing stored
