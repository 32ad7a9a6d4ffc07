"""Artifacts saved by a tool, read over REST."""

from __future__ import annotations

import httpx

from .helpers import assert_problem, message

BASE = "/apps/scripted/users/u1/sessions"


async def _saved(client: httpx.AsyncClient, sid: str = "s") -> None:
    await client.post(BASE, json={"sessionId": sid})
    response = await client.post(
        f"{BASE}/{sid}:run",
        json={"newMessage": message("save it")},
        headers={"accept": "application/json"},
    )
    assert response.status_code == 200
    events = response.json()["events"]
    assert events[1]["actions"]["artifactDelta"] == {"note.txt": 0}


async def test_artifact_saved_by_a_tool_is_listed_and_readable(client: httpx.AsyncClient) -> None:
    await _saved(client)
    listing = await client.get(f"{BASE}/s/artifacts")
    assert listing.json() == {"artifacts": ["note.txt"]}
    part = await client.get(f"{BASE}/s/artifacts/note.txt")
    assert part.status_code == 200
    assert part.json() == {"text": "hello artifact"}
    versions = (await client.get(f"{BASE}/s/artifacts/note.txt/versions")).json()["versions"]
    assert [v["version"] for v in versions] == [0]
    assert versions[0]["createTime"] > 0
    assert versions[0]["sizeBytes"] == len("hello artifact")


async def test_artifact_versions_and_delete(client: httpx.AsyncClient) -> None:
    await _saved(client)
    await client.post(
        f"{BASE}/s:run",
        json={"newMessage": message("save again")},
        headers={"accept": "application/json"},
    )
    assert (
        await client.get(f"{BASE}/s/artifacts/note.txt", params={"version": 1})
    ).status_code == 200
    assert_problem(
        await client.get(f"{BASE}/s/artifacts/note.txt", params={"version": 7}),
        404,
        "artifact_not_found",
    )
    assert_problem(
        await client.get(f"{BASE}/s/artifacts/note.txt", params={"version": -1}),
        422,
        "invalid_request",
    )
    assert (await client.delete(f"{BASE}/s/artifacts/note.txt")).status_code == 204
    assert_problem(await client.get(f"{BASE}/s/artifacts/note.txt"), 404, "artifact_not_found")
    assert_problem(await client.delete(f"{BASE}/s/artifacts/note.txt"), 404, "artifact_not_found")
    assert (await client.get(f"{BASE}/s/artifacts")).json() == {"artifacts": []}


async def test_missing_artifacts_and_sessions_are_404(client: httpx.AsyncClient) -> None:
    await client.post(BASE, json={"sessionId": "s"})
    assert_problem(await client.get(f"{BASE}/s/artifacts/none.txt"), 404, "artifact_not_found")
    assert_problem(
        await client.get(f"{BASE}/s/artifacts/dir/none.txt/versions"), 404, "artifact_not_found"
    )
    assert_problem(await client.get(f"{BASE}/missing/artifacts"), 404, "session_not_found")
