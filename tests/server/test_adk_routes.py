"""The ADK-compatible routes under `/adk`: the reference's shapes and statuses, bad input, auth."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import jwt
import pytest

from app.runs import RunStatus
from tests.server.conftest import ClientFactory

SESSIONS = "/adk/apps/scripted/users/u/sessions"
SECRET = "s" * 40


def run_body(text: str = "chat hi", sid: str = "s", **extra: Any) -> dict[str, Any]:
    return {
        "appName": "scripted",
        "userId": "u",
        "sessionId": sid,
        "newMessage": {"role": "user", "parts": [{"text": text}]},
        **extra,
    }


async def new_session(client: httpx.AsyncClient, sid: str = "s", **body: Any) -> dict[str, Any]:
    response = await client.post(SESSIONS, json={"session_id": sid, **body})
    assert response.status_code == 200, response.text
    return response.json()  # type: ignore[no-any-return]


# --- apps and version ---------------------------------------------------------------------------


async def test_list_apps_and_version(client: httpx.AsyncClient) -> None:
    listed = await client.get("/adk/list-apps", params={"relative_path": "./"})
    assert listed.status_code == 200
    names = listed.json()
    assert "scripted" in names and "broken" not in names  # an app that failed to load: left out
    assert names == sorted(names)
    detailed = (await client.get("/adk/list-apps", params={"detailed": "true"})).json()
    assert [a["name"] for a in detailed["apps"]] == names
    assert detailed["apps"][names.index("scripted")] == {
        "name": "scripted",
        "rootAgentName": "scripted",
        "description": "Answers from a script chosen by the first word of the message.",
        "language": "python",
        "isComputerUse": False,
    }
    version = (await client.get("/adk/version")).json()
    assert set(version) == {"version", "language", "language_version"}
    assert version["language"] == "python"


async def test_dev_ui_side_routes_answer_empty(client: httpx.AsyncClient) -> None:
    assert (await client.get("/adk/config/telemetry")).json() == {"telemetry": False}
    for path in ("eval_sets", "eval_results", "debug/trace/session/s"):
        response = await client.get(f"/adk/dev/apps/scripted/{path}")
        assert (response.status_code, response.json()) == (200, [])
    assert (await client.get("/adk/dev/apps/nope/eval_sets")).status_code == 404


# --- sessions -----------------------------------------------------------------------------------


async def test_session_lifecycle_with_the_reference_shapes(client: httpx.AsyncClient) -> None:
    created = await new_session(client, state={"__session_metadata__": {"displayName": "hi"}})
    assert created["id"] == "s" and created["events"] == []
    assert created["state"] == {"__session_metadata__": {"displayName": "hi"}}
    assert {"appName", "userId", "lastUpdateTime"} <= set(created)

    anonymous = await client.post(SESSIONS, json={})  # assistant-ui's create
    assert anonymous.status_code == 200 and anonymous.json()["id"]
    assert (await client.post(SESSIONS)).status_code == 200  # no body at all
    duplicate = await client.post(SESSIONS, json={"sessionId": "s"})
    assert duplicate.status_code == 409
    assert duplicate.headers["content-type"] == "application/problem+json"

    listed = (await client.get(SESSIONS)).json()
    assert isinstance(listed, list) and len(listed) == 3
    assert all(item["events"] == [] for item in listed)

    patched = await client.patch(f"{SESSIONS}/s", json={"state_delta": {"color": "red"}})
    assert patched.status_code == 200
    assert patched.json()["state"]["color"] == "red"
    assert patched.json()["events"][-1]["invocationId"].startswith("p-")
    got = (await client.get(f"{SESSIONS}/s")).json()
    assert got["state"]["color"] == "red" and len(got["events"]) == 1

    deleted = await client.delete(f"{SESSIONS}/s")
    assert (deleted.status_code, deleted.json()) == (200, None)
    again = await client.delete(f"{SESSIONS}/s")
    assert (again.status_code, again.json()) == (200, None)  # 200 even when missing
    missing = await client.get(f"{SESSIONS}/s")
    assert missing.status_code == 404 and missing.json()["detail"] == "Session not found: s"


async def test_create_session_with_initial_events(client: httpx.AsyncClient) -> None:
    events = [
        {"author": "user", "content": {"role": "user", "parts": [{"text": "earlier"}]}},
        {"author": "scripted", "content": {"role": "model", "parts": [{"text": "reply"}]}},
    ]
    created = await new_session(client, events=events)
    assert [e["content"]["parts"][0]["text"] for e in created["events"]] == ["earlier", "reply"]
    bad = {"author": "user", "actions": {"stateDelta": {"x": 1}}}
    refused = await client.post(SESSIONS, json={"sessionId": "t", "events": [bad]})
    assert refused.status_code == 400
    assert "cannot include event actions" in refused.json()["detail"]
    assert (await client.get(f"{SESSIONS}/t")).status_code == 404


async def test_deprecated_create_with_id_takes_the_state_as_body(
    client: httpx.AsyncClient,
) -> None:
    created = await client.post(f"{SESSIONS}/old", json={"k": "v"})
    assert created.status_code == 200 and created.json()["state"] == {"k": "v"}


async def test_session_routes_404_for_unknown_app_and_patch_on_missing(
    client: httpx.AsyncClient,
) -> None:
    assert (await client.get("/adk/apps/nope/users/u/sessions")).status_code == 404
    assert (await client.post("/adk/apps/nope/users/u/sessions", json={})).status_code == 404
    patch = await client.patch(f"{SESSIONS}/none", json={"stateDelta": {"a": 1}})
    assert patch.status_code == 404


# --- artifacts ----------------------------------------------------------------------------------


async def test_artifacts_with_the_reference_shapes(client: httpx.AsyncClient) -> None:
    await new_session(client)
    base = f"{SESSIONS}/s/artifacts"
    saved = await client.post(
        base,
        json={
            "filename": "dir/a.txt",
            "artifact": {"inline_data": {"mime_type": "text/plain", "data": "aGk="}},
            "custom_metadata": {"k": 1},
        },
    )
    assert saved.status_code == 200, saved.text
    assert saved.json()["version"] == 0 and saved.json()["customMetadata"] == {"k": 1}
    await client.post(base, json={"filename": "dir/a.txt", "artifact": {"text": "v1"}})

    assert (await client.get(base)).json() == ["dir/a.txt"]
    assert (await client.get(f"{base}/dir/a.txt/versions")).json() == [0, 1]
    metadata = (await client.get(f"{base}/dir/a.txt/versions/metadata")).json()
    assert [m["version"] for m in metadata] == [0, 1]
    assert (await client.get(f"{base}/dir/a.txt/versions/0/metadata")).json()["version"] == 0
    assert (await client.get(f"{base}/dir/a.txt/versions/latest/metadata")).json()["version"] == 1
    assert (await client.get(f"{base}/dir/a.txt")).json() == {"text": "v1"}
    assert (await client.get(f"{base}/dir/a.txt", params={"version": 0})).json() == {
        "inlineData": {"mimeType": "text/plain", "data": "aGk="}
    }
    assert (await client.get(f"{base}/dir/a.txt/versions/latest")).json() == {"text": "v1"}
    bad_version = await client.get(f"{base}/dir/a.txt/versions/x")
    assert (bad_version.status_code, bad_version.json()["detail"]) == (422, "Invalid version ID")
    assert (await client.get(f"{base}/dir/a.txt/versions/7")).status_code == 404
    assert (await client.get(f"{base}/nope.txt")).status_code == 404

    deleted = await client.delete(f"{base}/dir/a.txt")
    assert (deleted.status_code, deleted.json()) == (200, None)
    assert (await client.get(base)).json() == []


async def test_save_artifact_bad_input(client: httpx.AsyncClient) -> None:
    await new_session(client)
    base = f"{SESSIONS}/s/artifacts"
    assert (await client.post(base, json={"filename": "a"})).status_code == 422
    empty = await client.post(base, json={"filename": "a", "artifact": {}})
    assert empty.status_code == 422
    bad_name = await client.post(base, json={"filename": "../a", "artifact": {"text": "x"}})
    assert bad_name.status_code == 400
    missing = await client.post(
        f"{SESSIONS}/none/artifacts", json={"filename": "a", "artifact": {"text": "x"}}
    )
    assert missing.status_code == 404


# --- runs ---------------------------------------------------------------------------------------


async def test_run_sse_statuses_before_the_stream(client: httpx.AsyncClient) -> None:
    missing = await client.post("/adk/run_sse", json=run_body(sid="none"))
    assert missing.status_code == 404
    assert missing.json()["detail"] == "Session not found: none"
    unknown_app = await client.post("/adk/run_sse", json={**run_body(), "appName": "nope"})
    assert unknown_app.status_code == 404
    no_app = await client.post("/adk/run_sse", json={**run_body(), "appName": None})
    assert no_app.status_code == 400 and "app_name" in no_app.json()["detail"]


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[]",
        b'{"appName":"scripted","sessionId":"s"}',
        b'{"appName":"scripted","userId":"u","sessionId":"s","newMessage":{"parts":"x"}}',
        b'{"appName":"scripted","userId":"u","sessionId":"s","newMessage":{"parts":[]}}',
        b'{"appName":"scripted","userId":"u","sessionId":"s","streaming":"maybe"}',
        b'{"appName":"scripted","userId":"a/b","sessionId":"s"}',
        b'{"appName":"scripted","userId":"u","sessionId":"s","newMessage":{"parts":'
        b'[{"functionCall":{"name":"x"}}]}}',
    ],
)
async def test_malformed_run_bodies_are_422_problems(
    client: httpx.AsyncClient, body: bytes
) -> None:
    await new_session(client)
    for path in ("/adk/run", "/adk/run_sse"):
        response = await client.post(
            path, content=body, headers={"Content-Type": "application/json"}
        )
        assert response.status_code == 422, (path, body, response.text)
        assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get(f"{SESSIONS}/s")).json()["events"] == []  # nothing stored


async def test_unknown_body_keys_are_ignored_like_the_reference(
    client: httpx.AsyncClient,
) -> None:
    await new_session(client)
    body = run_body(stateDelta=None, functionCallEventId=None, somethingNew={"x": 1})
    response = await client.post("/adk/run", json=body)
    assert response.status_code == 200, response.text
    assert [e["content"]["parts"][0]["text"] for e in response.json()] == ["ok"]


async def test_run_with_a_model_error_is_a_problem_with_the_stored_events(
    client: httpx.AsyncClient,
) -> None:
    await new_session(client)
    response = await client.post("/adk/run", json=run_body("fail now"))
    assert response.status_code == 502
    problem = response.json()
    assert problem["code"] == "model_error" and len(problem["events"]) == 2


async def test_a_run_on_a_busy_session_is_409_and_stores_nothing(
    client: httpx.AsyncClient,
) -> None:
    await new_session(client)
    runs = client.app.state.services.runs  # type: ignore[attr-defined]
    active = await runs.begin(("scripted", "u", "s"), "e-held")  # as if a run were streaming
    try:
        for path in ("/adk/run", "/adk/run_sse"):
            response = await client.post(path, json=run_body("chat"))
            assert response.status_code == 409 and response.json()["code"] == "run_in_progress"
            assert response.headers["retry-after"]
    finally:
        await runs.finish(active, RunStatus.COMPLETED)
    assert (await client.get(f"{SESSIONS}/s")).json()["events"] == []
    assert (await client.post("/adk/run", json=run_body("chat"))).status_code == 200


async def test_state_delta_and_custom_metadata_reach_the_run(client: httpx.AsyncClient) -> None:
    await new_session(client)
    body = run_body(state_delta={"mood": "calm"}, custom_metadata={"tag": "t1"})
    response = await client.post("/adk/run", json=body)
    assert response.status_code == 200
    assert response.json()[0]["customMetadata"] == {"tag": "t1"}
    assert (await client.get(f"{SESSIONS}/s")).json()["state"]["mood"] == "calm"


# --- auth ---------------------------------------------------------------------------------------


def token(user: str, *scopes: str) -> dict[str, str]:
    claims = {"sub": user, "aud": "svc", "exp": int(time.time()) + 3600, "scope": " ".join(scopes)}
    return {"Authorization": f"Bearer {jwt.encode(claims, SECRET, algorithm='HS256')}"}


@pytest.fixture
async def authed(make_client: ClientFactory) -> AsyncIterator[httpx.AsyncClient]:
    async with make_client(auth="jwt", jwt_secret=SECRET, jwt_audience="svc") as c:
        yield c


async def test_auth_binds_paths_bodies_and_the_live_query(authed: httpx.AsyncClient) -> None:
    alice, bob = token("alice"), token("bob")
    alice_sessions = "/adk/apps/scripted/users/alice/sessions"
    assert (await authed.get("/adk/list-apps")).status_code == 401
    assert (await authed.post(alice_sessions, json={"sessionId": "a"}, headers=alice)).is_success
    assert (await authed.get(alice_sessions, headers=bob)).status_code == 403
    assert (await authed.get(f"{alice_sessions}/a/artifacts", headers=bob)).status_code == 403

    body = {**run_body(sid="a"), "userId": "alice"}
    for path in ("/adk/run", "/adk/run_sse"):
        refused = await authed.post(path, json=body, headers=bob)
        assert refused.status_code == 403 and refused.json()["code"] == "forbidden"
        snake = {"app_name": "scripted", "user_id": "alice", "session_id": "a"}
        assert (await authed.post(path, json=snake, headers=bob)).status_code == 403
    assert (await authed.post("/adk/run", json=body, headers=alice)).status_code == 200
    admin = token("ops", "agent-service:admin")
    assert (await authed.post("/adk/run", json=body, headers=admin)).status_code == 200
    reserved = {**body, "stateDelta": {"app:x": 1}}
    assert (await authed.post("/adk/run", json=reserved, headers=alice)).status_code == 403
    events = (await authed.get(f"{alice_sessions}/a", headers=alice)).json()["events"]
    assert len(events) == 4  # two chats, nothing from bob or the refused state


async def test_list_apps_shows_only_the_apps_of_the_key(
    make_client: ClientFactory, pg_db_url: str
) -> None:
    async with make_client(database_url=pg_db_url, auth="api_key") as c:
        keys = c.app.state.services.authenticator.api_keys  # type: ignore[attr-defined]
        key, _ = await keys.create("alice", apps=["scripted"])
        headers = {"Authorization": f"Bearer {key}"}
        assert (await c.get("/adk/list-apps", headers=headers)).json() == ["scripted"]
        body = {**run_body(), "appName": "burst", "userId": "alice"}
        assert (await c.post("/adk/run_sse", json=body, headers=headers)).status_code == 403


# --- quotas -------------------------------------------------------------------------------------


async def test_adk_runs_count_against_the_same_quota_as_native_runs(
    make_client: ClientFactory,
) -> None:
    async with make_client(run_rate="2/minute") as client:
        await new_session(client)
        native = await client.post(
            "/apps/scripted/users/u/sessions/s:run",
            json={"newMessage": {"parts": [{"text": "chat"}]}},
        )
        assert native.status_code == 200
        adk = await client.post("/adk/run_sse", json=run_body())
        assert adk.status_code == 200 and adk.headers["ratelimit-remaining"] == "0"
        for path in ("/adk/run", "/adk/run_sse"):
            refused = await client.post(path, json=run_body())
            assert refused.status_code == 429 and refused.json()["code"] == "rate_limited"
            assert refused.headers["retry-after"]
        events = (await client.get(f"{SESSIONS}/s")).json()["events"]
        assert len([e for e in events if e["author"] == "user"]) == 2  # not the refused ones
