"""The HTTP service end to end: real uvicorn, real sockets, real Postgres, httpx streaming."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from .conftest import ServerProcess
from .sse import Frame, frames

pytestmark = [pytest.mark.e2e, pytest.mark.postgres]

BASE = "/apps/scripted/users/u1/sessions"
WAIT_SECONDS = 10.0


def _message(text: str) -> dict[str, Any]:
    return {"role": "user", "parts": [{"text": text}]}


async def _run_sse(
    http: httpx.AsyncClient, sid: str, body: dict[str, Any]
) -> tuple[httpx.Response, list[Frame]]:
    collected: list[Frame] = []
    async with http.stream("POST", f"{BASE}/{sid}:run", json=body) as response:
        if response.status_code == 200:
            collected = [f async for f in frames(response)]
        else:
            await response.aread()
    return response, collected


async def _events(http: httpx.AsyncClient, sid: str) -> list[dict[str, Any]]:
    response = await http.get(f"{BASE}/{sid}/events", params={"limit": 1000})
    assert response.status_code == 200
    return response.json()["events"]  # type: ignore[no-any-return]


def _content_frames(collected: list[Frame]) -> list[Frame]:
    return [f for f in collected if f.comment is None and f.event is None]


def _assert_one_end(collected: list[Frame], reason: str) -> dict[str, Any]:
    ends = [f for f in collected if f.event == "end"]
    assert len(ends) == 1
    assert collected[-1] is ends[0]
    end: dict[str, Any] = ends[0].json()
    assert end["reason"] == reason
    return end


async def test_chat_and_tool_runs_stream_stored_events(http: httpx.AsyncClient) -> None:
    assert (await http.post(BASE, json={"sessionId": "s"})).status_code == 201

    response, chat = await _run_sse(http, "s", {"newMessage": _message("chat")})
    assert response.headers["content-type"].startswith("text/event-stream")
    assert response.headers["cache-control"] == "no-cache"
    assert response.headers["x-accel-buffering"] == "no"
    assert "content-encoding" not in response.headers
    [reply] = _content_frames(chat)
    assert reply.json()["content"]["parts"] == [{"text": "ok"}]
    end = _assert_one_end(chat, "completed")

    _, tool = await _run_sse(http, "s", {"newMessage": _message("tool")})
    tool_frames = _content_frames(tool)
    assert len(tool_frames) == 3
    _assert_one_end(tool, "completed")

    stored = await _events(http, "s")
    assert [e["seq"] for e in stored] == [1, 2, 3, 4, 5, 6]
    streamed = [reply, *tool_frames]
    by_seq = {e["seq"]: e for e in stored}
    for frame in streamed:
        assert frame.id is not None
        assert frame.json() == by_seq[int(frame.id)]
    assert end["lastSeq"] == 2
    assert end["invocationId"] == reply.json()["invocationId"]


async def test_token_streaming_partials_have_no_id(http: httpx.AsyncClient) -> None:
    body = {"newMessage": _message("stream"), "streaming": True, "createSession": True}
    _, collected = await _run_sse(http, "stream", body)
    content = _content_frames(collected)
    partials, final = content[:-1], content[-1]
    assert len(partials) == 4
    assert all(f.id is None and f.json()["partial"] is True for f in partials)
    assert "".join(f.json()["content"]["parts"][0]["text"] for f in partials) == (
        "one two three four"
    )
    assert final.id == "2"
    assert [e["seq"] for e in await _events(http, "stream")] == [1, 2]


async def test_json_mode_and_sessions_on_postgres(http: httpx.AsyncClient) -> None:
    for sid in ("a", "b", "c"):
        assert (
            await http.post(BASE, json={"sessionId": sid, "state": {"n": sid}})
        ).status_code == 201
    response = await http.post(
        f"{BASE}/a:run",
        json={"newMessage": _message("tool")},
        headers={"accept": "application/json"},
    )
    assert response.status_code == 200
    assert [e["seq"] for e in response.json()["events"]] == [2, 3, 4]

    page = (await http.get(BASE, params={"pageSize": 2})).json()
    assert [s["id"] for s in page["sessions"]] == ["a", "c"]
    rest = (await http.get(BASE, params={"pageSize": 2, "pageToken": page["nextPageToken"]})).json()
    assert [s["id"] for s in rest["sessions"]] == ["b"]

    patched = await http.patch(f"{BASE}/b", json={"stateDelta": {"user:lang": "fr"}})
    assert patched.json()["state"] == {"n": "b", "user:lang": "fr"}
    assert (await http.get(f"{BASE}/c")).json()["state"]["user:lang"] == "fr"

    events = (await http.get(f"{BASE}/a/events", params={"after": 1, "limit": 2})).json()
    assert [e["seq"] for e in events["events"]] == [2, 3]
    assert events["nextAfter"] == 3

    assert (await http.delete(f"{BASE}/a")).status_code == 204
    assert (await http.get(f"{BASE}/a")).status_code == 404


async def test_artifact_saved_by_a_tool_is_served(http: httpx.AsyncClient) -> None:
    body = {"newMessage": _message("save"), "createSession": True}
    _, collected = await _run_sse(http, "art", body)
    _assert_one_end(collected, "completed")
    assert (await http.get(f"{BASE}/art/artifacts")).json() == {"artifacts": ["note.txt"]}
    assert (await http.get(f"{BASE}/art/artifacts/note.txt")).json() == {"text": "hello artifact"}
    versions = (await http.get(f"{BASE}/art/artifacts/note.txt/versions")).json()["versions"]
    assert [v["version"] for v in versions] == [0]


async def test_errors_after_the_stream_started_are_in_band(http: httpx.AsyncClient) -> None:
    await http.post(BASE, json={"sessionId": "err"})
    response, collected = await _run_sse(http, "err", {"newMessage": _message("fail")})
    assert response.status_code == 200
    [error] = [f for f in collected if f.event == "error"]
    assert error.json()["code"] == "model_error"
    assert error.json()["status"] == 502
    end = _assert_one_end(collected, "error")
    assert end["lastSeq"] == 3


@pytest.mark.parametrize(
    ("text", "status", "code"), [("boom", 502, "model_error"), ("raise", 500, "internal")]
)
async def test_a_first_model_call_failure_is_in_band_after_the_message_is_stored(
    http: httpx.AsyncClient, text: str, status: int, code: str
) -> None:
    await http.post(BASE, json={"sessionId": "first"})
    response, collected = await _run_sse(http, "first", {"newMessage": _message(text)})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/event-stream")
    error, end = collected
    assert error.event == "error"
    assert (error.json()["status"], error.json()["code"]) == (status, code)
    assert end.event == "end"
    [stored] = await _events(http, "first")
    assert stored["author"] == "user"
    assert stored["content"]["parts"] == [{"text": text}]
    assert end.json() == {
        "invocationId": stored["invocationId"],
        "lastSeq": None,
        "reason": "error",
    }
    # JSON mode: the problem body with the (no) events so far.
    json_mode = await http.post(
        f"{BASE}/first:run",
        json={"newMessage": _message(text)},
        headers={"accept": "application/json"},
    )
    assert json_mode.status_code == status
    assert json_mode.headers["content-type"].startswith("application/problem+json")
    assert json_mode.json()["code"] == code
    assert json_mode.json()["events"] == []
    assert len(await _events(http, "first")) == 2


async def _wait_for(predicate: Any, what: str) -> Any:
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            value = await predicate()
            if value:
                return value
            await asyncio.sleep(0.02)  # polling the server's state over HTTP
    raise AssertionError(what)


async def test_disconnect_mid_stream_cancels_the_run_and_keeps_the_session_usable(
    http: httpx.AsyncClient, server: ServerProcess
) -> None:
    await http.post(BASE, json={"sessionId": "dc"})
    async with http.stream("POST", f"{BASE}/dc:run", json={"newMessage": _message("slow")}) as r:
        assert r.status_code == 200
        async for frame in frames(r):
            if frame.id is not None:
                call = frame.json()["content"]["parts"][0]["functionCall"]
                assert call["name"] == "slow_tool"
                break  # leaving the block closes the connection mid-run

    async def cancelled_response() -> dict[str, Any] | None:
        events = await _events(http, "dc")
        for event in events:
            for part in (event.get("content") or {}).get("parts", []):
                if "functionResponse" in part:
                    return event
        return None

    reply = await _wait_for(cancelled_response, "the cancelled call was never answered")
    part = reply["content"]["parts"][0]["functionResponse"]
    assert part["id"] == call["id"]
    assert part["response"] == {"error": "cancelled: the client disconnected"}
    assert reply["author"] == "scripted"
    assert reply["content"]["role"] == "user"

    # The session works again (the run lock was released after the cleanup).
    response, collected = await _run_sse(http, "dc", {"newMessage": _message("chat")})
    assert response.status_code == 200, response.text
    _assert_one_end(collected, "completed")
    assert [e["seq"] for e in await _events(http, "dc")] == [1, 2, 3, 4, 5]
    assert "Traceback" not in server.log()


async def test_concurrent_run_on_one_session_is_409_and_idle_streams_ping(
    http: httpx.AsyncClient,
) -> None:
    await http.post(BASE, json={"sessionId": "busy"})
    async with http.stream("POST", f"{BASE}/busy:run", json={"newMessage": _message("slow")}) as r:
        assert r.status_code == 200
        stream = frames(r)
        first = await anext(stream)
        assert first.id == "2"
        second = await http.post(f"{BASE}/busy:run", json={"newMessage": _message("chat")})
        assert second.status_code == 409
        assert second.headers["content-type"] == "application/problem+json"
        assert second.json()["code"] == "run_in_progress"
        ping = await anext(stream)  # the slow tool keeps the run idle
        assert ping.comment == "ping"
        assert ping.lines == [": ping"]
        await stream.aclose()


async def test_bad_requests_over_the_wire(http: httpx.AsyncClient) -> None:
    await http.post(BASE, json={"sessionId": "bad"})
    cases: list[tuple[httpx.Response, int, str]] = []
    cases.append(
        (
            await http.post(f"{BASE}/missing:run", json={"newMessage": _message("x")}),
            404,
            "session_not_found",
        )
    )
    cases.append(
        (
            await http.post(
                "/apps/nope/users/u/sessions/s:run", json={"newMessage": _message("x")}
            ),
            404,
            "app_not_found",
        )
    )
    cases.append(
        (
            await http.post(
                "/apps/broken/users/u/sessions/s:run", json={"newMessage": _message("x")}
            ),
            503,
            "app_unavailable",
        )
    )
    cases.append(
        (
            await http.post(
                f"{BASE}/bad:run", content=b"{nope", headers={"content-type": "application/json"}
            ),
            422,
            "invalid_request",
        )
    )
    cases.append(
        (
            await http.post(
                f"{BASE}/bad:run", content=b"{}", headers={"content-type": "text/plain"}
            ),
            415,
            "unsupported_media_type",
        )
    )
    cases.append((await http.get(f"{BASE}/a%01b"), 422, "invalid_request"))
    cases.append((await http.get(f"{BASE}/" + "x" * 129), 422, "invalid_request"))
    big = b'{"state": {"k": "' + b"x" * 100_000 + b'"}}'
    cases.append(
        (
            await http.post(BASE, content=big, headers={"content-type": "application/json"}),
            413,
            "payload_too_large",
        )
    )

    async def chunked() -> Any:
        for _ in range(100):
            yield b" " * 1000

    cases.append(
        (
            await http.post(BASE, content=chunked(), headers={"content-type": "application/json"}),
            413,
            "payload_too_large",
        )
    )
    for response, status, code in cases:
        assert response.status_code == status, (response.request.url, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["code"] == code
    assert (await http.get("/readyz")).status_code == 200
