"""The run as a resource (in process, memory:// and SQLite): list, read, replay, cancel,
and the multitask strategies of `:run`. Cross-replica behaviour is in tests/e2e."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import ClientFactory
from .helpers import assert_problem, message, parse_sse

BASE = "/apps/scripted/users/u1/sessions"
JSON = {"accept": "application/json"}
WAIT_SECONDS = 10.0


@pytest.fixture(params=["memory", "sqlite"])
async def runs_client(
    request: pytest.FixtureRequest, make_client: ClientFactory, tmp_path: Path
) -> AsyncIterator[httpx.AsyncClient]:
    """A client of the app on memory:// and on a migrated SQLite file."""
    settings: dict[str, Any] = {}
    if request.param == "sqlite":
        settings = {"database_url": f"sqlite+aiosqlite:///{tmp_path / 'runs.db'}"}
        settings["migrate_on_start"] = True
    async with make_client(**settings) as client:
        yield client


async def _run(client: httpx.AsyncClient, sid: str, text: str, **options: Any) -> httpx.Response:
    body = {"newMessage": message(text), **options}
    return await client.post(f"{BASE}/{sid}:run", json=body, headers=JSON)


async def _wait_for_status(client: httpx.AsyncClient, sid: str, status: str) -> dict[str, Any]:
    async with asyncio.timeout(WAIT_SECONDS):
        while True:
            runs = (await client.get(f"{BASE}/{sid}/runs", params={"status": status})).json()
            if runs["runs"]:
                found: dict[str, Any] = runs["runs"][0]
                return found
            await asyncio.sleep(0.01)  # polling the server's state over HTTP


async def test_a_run_is_a_resource(runs_client: httpx.AsyncClient) -> None:
    client = runs_client
    await client.post(BASE, json={"sessionId": "s"})
    first = await _run(client, "s", "chat")
    second = await _run(client, "s", "tool")
    assert first.status_code == second.status_code == 200
    invocation = first.headers["x-invocation-id"]
    assert first.headers["location"] == f"{BASE}/s/runs/{invocation}"
    assert first.json()["events"][0]["invocationId"] == invocation

    run = (await client.get(first.headers["location"])).json()
    assert run["invocationId"] == invocation
    assert run["status"] == "completed" and run["lastSeq"] == 2 and run["error"] is None
    assert run["createTime"] <= run["startTime"] <= run["endTime"]

    listed = (await client.get(f"{BASE}/s/runs")).json()
    assert [r["invocationId"] for r in listed["runs"]] == [
        second.headers["x-invocation-id"],
        invocation,
    ]
    assert (await client.get(f"{BASE}/s/runs", params={"status": "running"})).json() == {"runs": []}
    page = (await client.get(f"{BASE}/s/runs", params={"pageSize": 1})).json()
    assert len(page["runs"]) == 1 and page["nextPageToken"]
    rest = (
        await client.get(
            f"{BASE}/s/runs", params={"pageSize": 1, "pageToken": page["nextPageToken"]}
        )
    ).json()
    assert [r["invocationId"] for r in rest["runs"]] == [invocation]
    assert "nextPageToken" not in rest or rest["nextPageToken"] is None


async def test_events_of_a_finished_run_replay_after_the_cursor(
    runs_client: httpx.AsyncClient,
) -> None:
    client = runs_client
    await client.post(BASE, json={"sessionId": "s"})
    await _run(client, "s", "chat")
    tool = await _run(client, "s", "tool")
    url = tool.headers["location"] + "/events"
    frames = parse_sse((await client.get(url)).text)
    assert [f.get("id") for f in frames] == ["3", "4", "5", "6", None]
    assert json.loads(frames[-1]["data"]) == {
        "invocationId": tool.headers["x-invocation-id"],
        "lastSeq": 6,
        "reason": "completed",
    }
    replayed = [json.loads(f["data"]) for f in frames[:-1]]
    assert replayed[0]["author"] == "user"  # the run's own message is part of the replay
    assert replayed[1:] == tool.json()["events"]
    after = parse_sse((await client.get(url, params={"after": 4})).text)
    assert [f.get("id") for f in after] == ["5", "6", None]
    resumed = parse_sse((await client.get(url, headers={"last-event-id": "5"})).text)
    assert [f.get("id") for f in resumed] == ["6", None]


async def test_unknown_runs_and_finished_runs_are_refused(runs_client: httpx.AsyncClient) -> None:
    client = runs_client
    await client.post(BASE, json={"sessionId": "s"})
    done = await _run(client, "s", "chat")
    for method, path in (
        ("GET", f"{BASE}/s/runs/e-nope"),
        ("GET", f"{BASE}/s/runs/e-nope/events"),
        ("POST", f"{BASE}/s/runs/e-nope:cancel"),
    ):
        assert_problem(await client.request(method, path), 404, "run_not_found")
    assert_problem(await client.get("/apps/nope/users/u1/sessions/s/runs"), 404, "app_not_found")
    cancel = await client.post(done.headers["location"] + ":cancel")
    assert_problem(cancel, 409, "run_finished")


async def test_runs_reject_bad_input(runs_client: httpx.AsyncClient) -> None:
    client = runs_client
    await client.post(BASE, json={"sessionId": "s"})
    assert_problem(
        await client.get(f"{BASE}/s/runs", params={"status": "done"}), 422, "invalid_request"
    )
    assert_problem(
        await client.get(f"{BASE}/s/runs", params={"pageSize": 0}), 422, "invalid_request"
    )
    assert_problem(
        await client.get(f"{BASE}/s/runs", params={"pageToken": "%%%"}), 400, "invalid_request"
    )
    assert_problem(
        await client.get(f"{BASE}/s/runs/e-x/events", params={"after": -1}), 422, "invalid_request"
    )
    assert_problem(
        await client.post(f"{BASE}/s/runs/e-x:cancel", params={"wait": "maybe"}),
        422,
        "invalid_request",
    )
    for options in ({"multitaskStrategy": "queue"}, {"onDisconnect": "stop"}):
        assert_problem(await _run(client, "s", "chat", **options), 422, "invalid_request")
    assert (await client.get(f"{BASE}/s/events")).json()["events"] == []


async def test_missing_session_is_404_and_records_no_run(runs_client: httpx.AsyncClient) -> None:
    client = runs_client
    assert_problem(await _run(client, "ghost", "chat"), 404, "session_not_found")
    created = await _run(client, "new", "chat", createSession=True)
    assert created.status_code == 200
    assert len((await client.get(f"{BASE}/new/runs")).json()["runs"]) == 1


async def test_cancel_stops_a_running_run_and_answers_its_open_call(
    runs_client: httpx.AsyncClient,
) -> None:
    client = runs_client
    await client.post(BASE, json={"sessionId": "s"})
    slow = asyncio.create_task(_run(client, "s", "slow"))
    running = await _wait_for_status(client, "s", "running")
    location = f"{BASE}/s/runs/{running['invocationId']}"
    async with asyncio.timeout(WAIT_SECONDS):
        while len((await client.get(f"{BASE}/s/events")).json()["events"]) < 2:
            await asyncio.sleep(0.01)  # until the call is stored
    cancelled = await client.post(location + ":cancel", params={"wait": "true"})
    assert cancelled.status_code == 200 and cancelled.json()["status"] == "cancelled"
    response = await slow
    assert_problem(response, 409, "run_cancelled")
    events = (await client.get(f"{BASE}/s/events")).json()["events"]
    reply = events[-1]["content"]["parts"][0]["functionResponse"]
    assert reply["name"] == "slow_tool" and reply["response"] == {"error": "cancelled"}
    assert (await _run(client, "s", "chat")).status_code == 200


async def test_interrupt_cancels_the_active_run_then_runs(runs_client: httpx.AsyncClient) -> None:
    client = runs_client
    await client.post(BASE, json={"sessionId": "s"})
    slow = asyncio.create_task(_run(client, "s", "slow"))
    running = await _wait_for_status(client, "s", "running")
    assert_problem(await _run(client, "s", "chat"), 409, "run_in_progress")
    interrupting = await _run(client, "s", "chat", multitaskStrategy="interrupt")
    assert interrupting.status_code == 200
    assert_problem(await slow, 409, "run_cancelled")
    first = (await client.get(f"{BASE}/s/runs/{running['invocationId']}")).json()
    assert first["status"] == "cancelled"
    events = (await client.get(f"{BASE}/s/events")).json()["events"]
    assert events[-1]["content"]["parts"] == [{"text": "ok"}]


async def test_enqueued_run_waits_its_turn_and_a_queued_run_can_be_cancelled(
    runs_client: httpx.AsyncClient,
) -> None:
    client = runs_client
    await client.post(BASE, json={"sessionId": "s"})
    slow = asyncio.create_task(_run(client, "s", "slow"))
    running = await _wait_for_status(client, "s", "running")
    queued_task = asyncio.create_task(_run(client, "s", "chat", multitaskStrategy="enqueue"))
    queued = await _wait_for_status(client, "s", "queued")
    removed = await client.post(f"{BASE}/s/runs/{queued['invocationId']}:cancel")
    assert removed.status_code == 200 and removed.json()["status"] == "cancelled"
    assert_problem(await queued_task, 409, "run_cancelled")

    waiting = asyncio.create_task(_run(client, "s", "tool", multitaskStrategy="enqueue"))
    await _wait_for_status(client, "s", "queued")
    await client.post(f"{BASE}/s/runs/{running['invocationId']}:cancel")
    await slow
    done = await waiting
    assert done.status_code == 200
    assert done.json()["events"][-1]["content"]["parts"] == [{"text": "It is sunny in Paris."}]
