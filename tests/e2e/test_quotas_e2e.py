"""Quotas end to end: two `agent-service serve` processes with API-key auth on one Postgres.

Every quota is counted in the database, so the limits hold for a user whatever replica
each request reaches. The windows are days (a test crossing 00:00 UTC would see its counts
start over; the reset header is checked to be far away first).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from tests.e2e.conftest import AGENT_SERVICE, REPO_ROOT, ServerProcess, running_servers
from tests.e2e.test_auth_e2e import make_key, stored_key

# Two server start-ups per test: slower than pyproject's 60 s default on a loaded machine.
pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(180)]

QUOTA_ENV = {
    "AGENT_SERVICE_AUTH": "api_key",
    "AGENT_SERVICE_RUN_RATE": "3/day",
    "AGENT_SERVICE_MAX_ACTIVE_RUNS_PER_USER": "1",
    "AGENT_SERVICE_TOKEN_BUDGET": "250/day",
}


@pytest.fixture
def pair(pg_db_url: str, tmp_path: Path) -> Iterator[list[ServerProcess]]:
    """Two replicas on one database, every quota on."""
    with running_servers(pg_db_url, tmp_path, "a", "b", **QUOTA_ENV) as servers:
        yield servers


def message(text: str) -> dict[str, Any]:
    return {"newMessage": {"role": "user", "parts": [{"text": text}]}, "createSession": True}


def client(server: ServerProcess, key: str) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {key}"}
    return httpx.AsyncClient(base_url=server.base_url, headers=headers, timeout=30)


async def run(http: httpx.AsyncClient, app: str, uid: str, sid: str, text: str) -> httpx.Response:
    return await http.post(f"/apps/{app}/users/{uid}/sessions/{sid}:run", json=message(text))


def assert_429(response: httpx.Response, code: str, limit: int) -> None:
    assert response.status_code == 429, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    assert response.json()["code"] == code
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["ratelimit-limit"] == str(limit)
    assert response.headers["ratelimit-remaining"] == "0"
    assert int(response.headers["ratelimit-reset"]) >= 1


async def test_run_rate_is_shared_by_two_replicas(
    pair: list[ServerProcess], pg_db_url: str
) -> None:
    key = make_key(pg_db_url, "--user", "rate")  # the CLI, as an operator would
    a, b = (client(server, key) for server in pair)
    async with a, b:
        first = await run(a, "scripted", "rate", "s1", "chat")
        assert first.status_code == 200, first.text
        assert first.headers["ratelimit-limit"] == "3"
        assert first.headers["ratelimit-remaining"] == "2"
        if int(first.headers["ratelimit-reset"]) < 60:
            pytest.skip("the day window ends within a minute")
        assert (await run(a, "scripted", "rate", "s2", "chat")).status_code == 200
        third = await run(b, "scripted", "rate", "s3", "chat")
        assert third.status_code == 200 and third.headers["ratelimit-remaining"] == "0"
        assert_429(await run(a, "scripted", "rate", "s4", "chat"), "rate_limited", 3)
        assert_429(await run(b, "scripted", "rate", "s4", "chat"), "rate_limited", 3)
        # Refused before anything was stored: no session s4 on either replica.
        assert (await b.get("/apps/scripted/users/rate/sessions/s4")).status_code == 404
        usage = (await b.get("/apps/scripted/users/rate/usage")).json()
        assert usage["runs"]["used"] == 3 and usage["runs"]["limit"] == 3
        assert usage["runs"]["window"] == "day"
        assert usage["activeRuns"] == {"limit": 1, "used": 0}
        # Usage is bound to the caller like every user path.
        assert (await b.get("/apps/scripted/users/other/usage")).status_code == 403


async def test_active_runs_are_counted_across_replicas_and_freed_on_cancel(
    pair: list[ServerProcess], pg_db_url: str
) -> None:
    key = await stored_key(pg_db_url, "busy")
    a, b = (client(server, key) for server in pair)
    sessions = "/apps/scripted/users/busy/sessions"
    async with a, b:
        async with a.stream("POST", f"{sessions}/s1:run", json=message("slow")) as slow:
            assert slow.status_code == 200
            invocation = slow.headers["x-invocation-id"]
            lines = slow.aiter_lines()
            async for line in lines:  # the tool call is stored: the run is under way
                if "slow_tool" in line:
                    break
            refused = await run(b, "scripted", "busy", "s2", "chat")
            assert_429(refused, "rate_limited", 1)
            assert "active runs" in refused.json()["detail"]
            cancelled = await b.post(
                f"{sessions}/s1/runs/{invocation}:cancel", params={"wait": "true"}
            )
            assert cancelled.json()["status"] == "cancelled"
            async for _ in lines:  # to the end frame
                pass
        usage = (await b.get("/apps/scripted/users/busy/usage")).json()
        assert usage["activeRuns"] == {"limit": 1, "used": 0}
        # In-band errors free the slot too.
        assert (await run(b, "scripted", "busy", "s2", "boom")).status_code == 200
        assert (await run(a, "scripted", "busy", "s3", "chat")).status_code == 200


async def test_token_budget_is_shared_and_closes_live_sockets(
    pair: list[ServerProcess], pg_db_url: str
) -> None:
    key = await stored_key(pg_db_url, "tok")
    a, b = (client(server, key) for server in pair)
    async with a, b:
        assert (await run(a, "metered", "tok", "s1", "tool 100")).status_code == 200  # 200
        usage = (await b.get("/apps/metered/users/tok/usage")).json()
        assert usage["tokens"]["used"] == 200 and usage["tokens"]["remaining"] == 50
        assert (await run(b, "metered", "tok", "s1", "chat 100")).status_code == 200  # 300
        assert_429(await run(a, "metered", "tok", "s1", "chat 1"), "token_budget_exceeded", 250)
        usage = (await a.get("/apps/metered/users/tok/usage")).json()
        assert usage["tokens"]["used"] == 300 and usage["tokens"]["remaining"] == 0
        assert usage["runs"]["used"] == 2  # the refused run took none

    ws_url = pair[1].base_url.replace("http", "ws") + "/apps/metered/users/tok/sessions/s1/live"
    headers = {"Authorization": f"Bearer {key}"}
    async with connect(ws_url, additional_headers=headers, open_timeout=10) as ws:
        frame = json.loads(await ws.recv())
        assert frame["error"]["code"] == "token_budget_exceeded"
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AGENT_SERVICE_RUN_RATE", "lots"),
        ("AGENT_SERVICE_TOKEN_BUDGET", "100/week"),
        ("AGENT_SERVICE_MAX_ACTIVE_RUNS_PER_USER", "0"),
    ],
)
def test_bad_quota_settings_fail_at_start(name: str, value: str, tmp_path: Path) -> None:
    env = {
        **os.environ,
        "AGENT_SERVICE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'x.db'}",
        name: value,
    }
    done = subprocess.run(
        [str(AGENT_SERVICE), "serve", "--port", "1"],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert name in done.stderr
