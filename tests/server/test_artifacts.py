"""Artifacts saved by a tool, read over REST."""

from __future__ import annotations

from urllib.parse import quote

import httpx
import pytest
from google.genai import types

from app.errors import InvalidRequestError

from .helpers import assert_problem, message, services_of

BASE = "/apps/scripted/users/u1/sessions"
_TEXT = types.Part(text="t")


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


@pytest.mark.parametrize(
    "name",
    ["a/versions", "a\nb", "tab\tname", "/abs", "a//b", "./a", "a/..", "", "x" * 257],
)
async def test_artifact_names_unusable_over_http_are_refused_when_saved(
    client: httpx.AsyncClient, name: str
) -> None:
    artifacts = services_of(client).artifacts
    with pytest.raises(InvalidRequestError, match="Invalid artifact name"):
        await artifacts.save_artifact(
            app_name="scripted", user_id="u1", session_id="s", filename=name, artifact=_TEXT
        )
    assert (
        await artifacts.list_artifact_keys(app_name="scripted", user_id="u1", session_id="s") == []
    )


@pytest.mark.parametrize(
    "name", ["versions", "dir/file.txt", "a b?#%.txt", "caf\u00e9/x", "user:shared/v1", "..."]
)
async def test_every_artifact_name_allowed_is_fully_usable(
    client: httpx.AsyncClient, name: str
) -> None:
    await client.post(BASE, json={"sessionId": "s"})
    await services_of(client).artifacts.save_artifact(
        app_name="scripted", user_id="u1", session_id="s", filename=name, artifact=_TEXT
    )
    url = f"{BASE}/s/artifacts/" + quote(name, safe="/:")

    assert name in (await client.get(f"{BASE}/s/artifacts")).json()["artifacts"]
    assert (await client.get(url)).json() == {"text": "t"}
    versions = (await client.get(url + "/versions")).json()["versions"]
    assert [v["version"] for v in versions] == [0]
    assert (await client.delete(url)).status_code == 204
    assert_problem(await client.get(url), 404, "artifact_not_found")


async def test_delete_on_the_versions_resource_is_405(client: httpx.AsyncClient) -> None:
    await _saved(client)
    response = await client.delete(f"{BASE}/s/artifacts/note.txt/versions")
    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET"
    assert (await client.get(f"{BASE}/s/artifacts/note.txt")).status_code == 200
