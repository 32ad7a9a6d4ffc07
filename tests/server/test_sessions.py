"""Sessions CRUD and the event log."""

from __future__ import annotations

import httpx

from .helpers import assert_problem, message

BASE = "/apps/scripted/users/u1/sessions"


async def _run(client: httpx.AsyncClient, sid: str, text: str) -> list[dict[str, object]]:
    response = await client.post(
        f"{BASE}/{sid}:run",
        json={"newMessage": message(text)},
        headers={"accept": "application/json"},
    )
    assert response.status_code == 200, response.text
    return response.json()["events"]  # type: ignore[no-any-return]


async def test_create_session_with_id_and_state(client: httpx.AsyncClient) -> None:
    response = await client.post(BASE, json={"sessionId": "s1", "state": {"k": "v"}})
    assert response.status_code == 201
    body = response.json()
    assert body["id"] == "s1"
    assert body["appName"] == "scripted"
    assert body["userId"] == "u1"
    assert body["state"] == {"k": "v"}
    assert body["lastSeq"] == 0
    assert "events" not in body


async def test_create_session_accepts_snake_case_and_no_body(client: httpx.AsyncClient) -> None:
    snake = await client.post(BASE, json={"session_id": "snake"})
    assert snake.status_code == 201
    assert snake.json()["id"] == "snake"
    generated = await client.post(BASE)
    assert generated.status_code == 201
    assert len(generated.json()["id"]) >= 8


async def test_create_existing_session_is_409(client: httpx.AsyncClient) -> None:
    await client.post(BASE, json={"sessionId": "dup"})
    assert_problem(await client.post(BASE, json={"sessionId": "dup"}), 409, "session_exists")


async def test_create_session_for_unknown_app_is_404(client: httpx.AsyncClient) -> None:
    response = await client.post("/apps/nope/users/u1/sessions", json={})
    assert_problem(response, 404, "app_not_found")


async def test_list_sessions_pages_newest_first(client: httpx.AsyncClient) -> None:
    for sid in ("a", "b", "c"):
        await client.post(BASE, json={"sessionId": sid})
    await _run(client, "a", "chat")  # a is now the most recently updated

    first = (await client.get(BASE, params={"pageSize": 2})).json()
    assert [s["id"] for s in first["sessions"]] == ["a", "c"]
    assert all("events" not in s for s in first["sessions"])
    second = (
        await client.get(BASE, params={"pageSize": 2, "pageToken": first["nextPageToken"]})
    ).json()
    assert [s["id"] for s in second["sessions"]] == ["b"]
    assert "nextPageToken" not in second


async def test_list_sessions_rejects_bad_paging(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(BASE, params={"pageSize": 0}), 422, "invalid_request")
    assert_problem(await client.get(BASE, params={"pageSize": 1001}), 422, "invalid_request")
    assert_problem(await client.get(BASE, params={"pageSize": "x"}), 422, "invalid_request")
    bad_token = await client.get(BASE, params={"pageToken": "not-a-token!"})
    assert_problem(bad_token, 400, "invalid_request")


async def test_get_session_with_events_and_recent_limit(client: httpx.AsyncClient) -> None:
    await client.post(BASE, json={"sessionId": "s"})
    await _run(client, "s", "tool")
    full = (await client.get(f"{BASE}/s")).json()
    assert [e["seq"] for e in full["events"]] == [1, 2, 3, 4]
    assert full["lastSeq"] == 4
    recent = (await client.get(f"{BASE}/s", params={"numRecentEvents": 1})).json()
    assert [e["seq"] for e in recent["events"]] == [4]
    assert_problem(
        await client.get(f"{BASE}/s", params={"numRecentEvents": -1}), 422, "invalid_request"
    )


async def test_get_missing_session_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get(f"{BASE}/missing"), 404, "session_not_found")


async def test_patch_appends_a_user_state_event(client: httpx.AsyncClient) -> None:
    await client.post(BASE, json={"sessionId": "p", "state": {"a": 1}})
    response = await client.patch(f"{BASE}/p", json={"stateDelta": {"b": 2}})
    assert response.status_code == 200
    body = response.json()
    assert body["state"] == {"a": 1, "b": 2}
    [event] = body["events"]
    assert event["author"] == "user"
    assert event["actions"]["stateDelta"] == {"b": 2}
    assert event["seq"] == 1
    assert event["invocationId"].startswith("e-")


async def test_patch_rejects_bad_bodies(client: httpx.AsyncClient) -> None:
    await client.post(BASE, json={"sessionId": "p"})
    assert_problem(await client.patch(f"{BASE}/p", json={}), 422, "invalid_request")
    assert_problem(await client.patch(f"{BASE}/p", json={"stateDelta": {}}), 422, "invalid_request")
    assert_problem(
        await client.patch(f"{BASE}/p", json={"stateDelta": [1]}), 422, "invalid_request"
    )
    assert_problem(
        await client.patch(f"{BASE}/p", json={"stateDelta": {"a": 1}, "extra": 1}),
        422,
        "invalid_request",
    )
    assert_problem(
        await client.patch(f"{BASE}/missing", json={"stateDelta": {"a": 1}}),
        404,
        "session_not_found",
    )


async def test_delete_session_then_404(client: httpx.AsyncClient) -> None:
    await client.post(BASE, json={"sessionId": "d"})
    response = await client.delete(f"{BASE}/d")
    assert response.status_code == 204
    assert response.content == b""
    assert_problem(await client.get(f"{BASE}/d"), 404, "session_not_found")
    assert_problem(await client.delete(f"{BASE}/d"), 404, "session_not_found")


async def test_events_page_by_seq_with_next_after(client: httpx.AsyncClient) -> None:
    await client.post(BASE, json={"sessionId": "ev"})
    await _run(client, "ev", "tool")
    await _run(client, "ev", "chat")  # 6 events in all
    page = (await client.get(f"{BASE}/ev/events", params={"limit": 4})).json()
    assert [e["seq"] for e in page["events"]] == [1, 2, 3, 4]
    assert page["nextAfter"] == 4
    rest = (await client.get(f"{BASE}/ev/events", params={"after": 4, "limit": 4})).json()
    assert [e["seq"] for e in rest["events"]] == [5, 6]
    assert "nextAfter" not in rest
    empty = (await client.get(f"{BASE}/ev/events", params={"after": 6})).json()
    assert empty == {"events": []}


async def test_events_reject_bad_cursor_and_missing_session(client: httpx.AsyncClient) -> None:
    await client.post(BASE, json={"sessionId": "ev"})
    for params in ({"after": -1}, {"limit": 0}, {"limit": 1001}, {"after": "x"}):
        assert_problem(await client.get(f"{BASE}/ev/events", params=params), 422, "invalid_request")
    assert_problem(await client.get(f"{BASE}/missing/events"), 404, "session_not_found")
