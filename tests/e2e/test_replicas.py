"""Two real `agent-service serve` processes on one Postgres: runs are shared between them.

One active run per session across replicas, cancel and reattach from the other replica, the
sealing of a killed replica's run once its (short) lease expires, and the drain on SIGTERM.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
from websockets.asyncio.client import ClientConnection
from websockets.asyncio.client import connect as ws_connect
from websockets.exceptions import ConnectionClosed

from tests.conftest import asyncpg_dsn, create_database, drop_database, run_async

from .conftest import AGENT_SERVICE, ServerProcess, start_server, stop_server, wait_healthy
from .history import SESSIONS, assert_well_formed
from .history import calls as _calls
from .history import message as _message
from .history import responses as _responses
from .history import stored_events as _events
from .sse import Frame, frames

pytestmark = pytest.mark.timeout(180)  # start-up and 100-run tests on a loaded machine

LEASE_SECONDS = 3.0
DRAIN_SECONDS = 2.0
WAIT_SECONDS = 20.0
SATURATING_REQUESTS = 80
SERVE = [str(AGENT_SERVICE), "serve", "--host", "127.0.0.1", "--port"]


@pytest.fixture(scope="module")
def replica_db_url(postgres_url: str, pg_template: str) -> Iterator[str]:
    """A migrated database shared by this module's tests (each uses its own sessions)."""
    name = f"t_{uuid.uuid4().hex[:16]}"
    url = run_async(lambda: create_database(postgres_url, name, template=pg_template))
    try:
        yield url
    finally:
        run_async(lambda: drop_database(postgres_url, name))


@pytest.fixture(scope="module")
def replicas(
    replica_db_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two `agent-service serve` processes on one database, with a short run lease.

    Started once for the module (start-up dominates on a loaded machine); the test that
    kills replica A comes last.
    """
    logs = tmp_path_factory.mktemp("replicas")
    started = [
        start_server(
            SERVE,
            replica_db_url,
            logs / f"replica-{name}.log",
            AGENT_SERVICE_RUN_LEASE_SECONDS=str(LEASE_SECONDS),
        )
        for name in ("a", "b")
    ]
    try:
        for server in started:
            wait_healthy(server)
        yield started[0], started[1]
    finally:
        for server in started:
            stop_server(server)


@pytest.fixture
async def clients(
    replicas: tuple[ServerProcess, ServerProcess],
) -> AsyncIterator[tuple[httpx.AsyncClient, httpx.AsyncClient]]:
    """One httpx client per replica."""
    limits = httpx.Limits(max_connections=200)
    a, b = replicas
    async with (
        httpx.AsyncClient(base_url=a.base_url, timeout=WAIT_SECONDS, limits=limits) as http_a,
        httpx.AsyncClient(base_url=b.base_url, timeout=WAIT_SECONDS, limits=limits) as http_b,
    ):
        yield http_a, http_b


async def _read_until_call(response: httpx.Response) -> tuple[AsyncIterator[Frame], Frame]:
    stream = frames(response)
    async for frame in stream:
        if frame.id is not None and _calls(frame.json()):
            return stream, frame
    raise AssertionError("the run never called its tool")


async def _end(stream: AsyncIterator[Frame]) -> tuple[list[Frame], dict[str, Any]]:
    seen: list[Frame] = []
    async for frame in stream:
        if frame.event == "end":
            return seen, frame.json()
        if frame.comment is None:
            seen.append(frame)
    raise AssertionError("the stream ended without an end frame")


async def test_concurrent_runs_on_two_replicas_never_interleave(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    http_a, http_b = clients
    assert (await http_a.post(SESSIONS, json={"sessionId": "busy"})).status_code == 201

    async def run(index: int) -> httpx.Response:
        http = (http_a, http_b)[index % 2]
        return await http.post(
            f"{SESSIONS}/busy:run",
            json={"newMessage": _message(f"tool {index}")},
            headers={"accept": "application/json"},
        )

    responses = await asyncio.gather(*(run(i) for i in range(100)))
    statuses = [r.status_code for r in responses]
    assert set(statuses) <= {200, 409} and 200 in statuses
    for response in responses:
        if response.status_code == 409:
            assert response.json()["code"] == "run_in_progress"
            assert response.headers["retry-after"] == "1"
    order = assert_well_formed(await _events(http_a, "busy"))
    completed = {r.headers["x-invocation-id"] for r in responses if r.status_code == 200}
    assert set(order) == completed  # a refused run stored nothing, not even its message
    runs = (await http_b.get(f"{SESSIONS}/busy/runs", params={"pageSize": 1000})).json()
    assert {r["invocationId"] for r in runs["runs"]} == completed
    assert {r["status"] for r in runs["runs"]} == {"completed"}


async def test_enqueued_runs_on_two_replicas_complete_in_arrival_order(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    http_a, http_b = clients
    await http_a.post(SESSIONS, json={"sessionId": "queue"})

    async def run(index: int) -> tuple[httpx.Response, list[Frame], dict[str, Any]]:
        http = (http_a, http_b)[index % 2]
        body = {"newMessage": _message(f"tool {index}"), "multitaskStrategy": "enqueue"}
        async with http.stream("POST", f"{SESSIONS}/queue:run", json=body) as response:
            assert response.status_code == 200
            seen, end = await _end(frames(response))
            return response, seen, end

    results = await asyncio.gather(*(run(i) for i in range(100)))
    assert all(end["reason"] == "completed" for _, _, end in results)
    order = assert_well_formed(await _events(http_a, "queue"))
    assert len(order) == 100
    runs = (await http_b.get(f"{SESSIONS}/queue/runs", params={"pageSize": 100})).json()["runs"]
    arrival = [r["invocationId"] for r in reversed(runs)]  # newest first -> oldest first
    assert order == arrival


async def test_cancel_on_one_replica_stops_a_run_on_the_other(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    http_a, http_b = clients
    await http_a.post(SESSIONS, json={"sessionId": "cancel"})
    body = {"newMessage": _message("slow")}
    async with http_a.stream("POST", f"{SESSIONS}/cancel:run", json=body) as response:
        invocation = response.headers["x-invocation-id"]
        assert response.headers["location"] == f"{SESSIONS}/cancel/runs/{invocation}"
        stream, call_frame = await _read_until_call(response)
        started = time.monotonic()
        cancelled = await http_b.post(
            f"{SESSIONS}/cancel/runs/{invocation}:cancel", params={"wait": "true"}
        )
        assert cancelled.status_code == 200, cancelled.text
        assert cancelled.json()["status"] == "cancelled"
        _, end = await _end(stream)
        assert end["reason"] == "cancelled"
        assert time.monotonic() - started < 5

    events = await _events(http_b, "cancel")
    assert_well_formed(events)
    call = _calls(call_frame.json())[0]
    assert _responses(events[-1]) == [
        {"id": call["id"], "name": "slow_tool", "response": {"error": "cancelled"}}
    ]
    again = await http_b.post(f"{SESSIONS}/cancel/runs/{invocation}:cancel")
    assert again.status_code == 409 and again.json()["code"] == "run_finished"
    follow_up = await http_b.post(
        f"{SESSIONS}/cancel:run",
        json={"newMessage": _message("chat")},
        headers={"accept": "application/json"},
    )
    assert follow_up.status_code == 200


async def test_reattach_on_the_other_replica_gets_the_missing_events_then_live_ones(
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    http_a, http_b = clients
    await http_a.post(SESSIONS, json={"sessionId": "attach"})
    body = {"newMessage": _message("pause"), "onDisconnect": "continue"}
    async with http_a.stream("POST", f"{SESSIONS}/attach:run", json=body) as response:
        invocation = response.headers["x-invocation-id"]
        async for frame in frames(response):
            assert frame.id == "2"  # the call (the user's message, seq 1, is not streamed)
            break  # the connection drops; the run goes on (onDisconnect: continue)

    url = f"{SESSIONS}/attach/runs/{invocation}/events"
    async with http_b.stream("GET", url, headers={"last-event-id": "1"}) as response:
        assert response.status_code == 200
        seen, end = await _end(frames(response))
    assert [f.id for f in seen] == ["2", "3", "4"]  # the call, its answer, the reply
    assert end == {"invocationId": invocation, "lastSeq": 4, "reason": "completed"}
    events = await _events(http_b, "attach")
    assert [json.loads(f.data or "") for f in seen] == events[1:]

    # A finished run replays and ends at once, from either replica and any cursor.
    async with http_a.stream("GET", url, params={"after": "2"}) as response:
        seen, end = await _end(frames(response))
    assert [f.id for f in seen] == ["3", "4"] and end["reason"] == "completed"


def _live_url(server: ServerProcess, sid: str) -> str:
    base = server.base_url.replace("http://", "ws://", 1)
    return f"{base}{SESSIONS}/{sid}/live?modalities=TEXT"


async def _close_of(ws: ClientConnection) -> tuple[int | None, list[dict[str, Any]]]:
    """Read until the server closes; return its close code and the frames before."""
    received: list[dict[str, Any]] = []
    async with asyncio.timeout(WAIT_SECONDS):
        with contextlib.suppress(ConnectionClosed):
            while True:
                received.append(json.loads(await ws.recv()))
    return ws.close_code, received


async def test_a_live_reconnect_on_either_replica_right_after_a_clean_close_is_accepted(
    replicas: tuple[ServerProcess, ServerProcess],
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    http_a, _ = clients
    await http_a.post(SESSIONS, json={"sessionId": "live"})
    for index in range(6):
        async with ws_connect(_live_url(replicas[index % 2], "live")) as ws:
            await ws.send(json.dumps({"close": True}))
            code, received = await _close_of(ws)
        assert (code, received) == (1000, [])
    # The session was taken by each connection in turn, and is free again.
    runs = (await http_a.get(f"{SESSIONS}/live/runs", params={"pageSize": 100})).json()["runs"]
    assert len(runs) == 6 and {r["status"] for r in runs} == {"completed"}


async def _lock_waiters(db_url: str, at_least: int) -> None:
    """Wait until `at_least` backends wait for a lock (no notification exists for that)."""
    query = "SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'"
    connection = await asyncpg.connect(asyncpg_dsn(db_url))  # outside any transaction: a
    try:  # transaction would see one snapshot of pg_stat_activity
        async with asyncio.timeout(WAIT_SECONDS):
            while await connection.fetchval(query) < at_least:
                await asyncio.sleep(0.02)
    finally:
        await connection.close()


async def test_a_run_keeps_its_lease_while_its_replicas_request_pool_is_saturated(
    replica_db_url: str, clients: tuple[httpx.AsyncClient, httpx.AsyncClient]
) -> None:
    http_a, http_b = clients
    await http_a.post(SESSIONS, json={"sessionId": "saturated"})
    body = {"newMessage": _message("slow")}
    async with http_a.stream("POST", f"{SESSIONS}/saturated:run", json=body) as response:
        invocation = response.headers["x-invocation-id"]
        stream, _ = await _read_until_call(response)
        blocker = await asyncpg.connect(asyncpg_dsn(replica_db_url))
        try:
            lock = blocker.transaction()
            await lock.start()
            await blocker.execute("LOCK TABLE artifacts IN ACCESS EXCLUSIVE MODE")
            # 80 requests take every connection of replica A's pool (30 + 10 overflow) and
            # wait on the lock, or wait for a connection (longer than a lease). At least 15
            # reach the lock (the session store keeps at most 25 of the pool for itself).
            stuck = [
                asyncio.create_task(http_a.get(f"{SESSIONS}/saturated/artifacts"))
                for _ in range(SATURATING_REQUESTS)
            ]
            await _lock_waiters(replica_db_url, 10)
            # Replica B follows the run: the stream ends if B seals it as lost.
            url = f"{SESSIONS}/saturated/runs/{invocation}/events"
            async with http_b.stream("GET", url, params={"after": "2"}) as attached:
                with pytest.raises(TimeoutError):
                    async with asyncio.timeout(2 * LEASE_SECONDS + 1):
                        await _end(frames(attached))
            await lock.rollback()
        finally:
            await blocker.close()
        assert [r.status_code for r in await asyncio.gather(*stuck)] == [200] * len(stuck)

        cancelled = await http_b.post(
            f"{SESSIONS}/saturated/runs/{invocation}:cancel", params={"wait": "true"}
        )
        assert cancelled.json()["status"] == "cancelled"  # it was still running, not lost
        _, end = await _end(stream)
        assert end["reason"] == "cancelled"
    assert_well_formed(await _events(http_b, "saturated"))


async def test_a_killed_replicas_run_is_sealed_after_its_lease(
    replicas: tuple[ServerProcess, ServerProcess],
    clients: tuple[httpx.AsyncClient, httpx.AsyncClient],
) -> None:
    server_a, _ = replicas
    http_a, http_b = clients
    await http_a.post(SESSIONS, json={"sessionId": "lost"})
    async with http_a.stream(
        "POST", f"{SESSIONS}/lost:run", json={"newMessage": _message("slow")}
    ) as response:
        invocation = response.headers["x-invocation-id"]
        _, call_frame = await _read_until_call(response)
        url = f"{SESSIONS}/lost/runs/{invocation}/events"
        async with http_b.stream("GET", url, params={"after": "2"}) as attached:
            assert attached.status_code == 200
            server_a.process.kill()  # SIGKILL: nothing is cleaned up
            killed = time.monotonic()
            seen, end = await _end(frames(attached))
    sealed_after = time.monotonic() - killed
    assert sealed_after < LEASE_SECONDS + 5
    assert end["reason"] == "error"
    run = (await http_b.get(f"{SESSIONS}/lost/runs/{invocation}")).json()
    assert run["status"] == "error" and run["error"]["code"] == "run_lost"

    events = await _events(http_b, "lost")
    assert_well_formed(events)
    call = _calls(call_frame.json())[0]
    assert _responses(events[-1]) == [
        {"id": call["id"], "name": "slow_tool", "response": {"error": "run_lost"}}
    ]
    assert [json.loads(f.data or "") for f in seen if f.id] == events[2:]
    follow_up = await http_b.post(
        f"{SESSIONS}/lost:run",
        json={"newMessage": _message("tool")},
        headers={"accept": "application/json"},
    )
    assert follow_up.status_code == 200
    assert_well_formed(await _events(http_b, "lost"))


@pytest.fixture
def draining_server(pg_db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """One `agent-service serve` with a 2 s drain."""
    server = start_server(
        SERVE,
        pg_db_url,
        tmp_path / "draining.log",
        AGENT_SERVICE_DRAIN_SECONDS=str(DRAIN_SECONDS),
    )
    try:
        wait_healthy(server)
        yield server
    finally:
        stop_server(server)


async def test_sigterm_drains_runs_then_cancels_the_rest(
    draining_server: ServerProcess, pg_db_url: str
) -> None:
    async with httpx.AsyncClient(base_url=draining_server.base_url, timeout=WAIT_SECONDS) as http:
        for sid in ("short", "long", "late", "live"):
            await http.post(SESSIONS, json={"sessionId": sid})
        async with (
            http.stream(
                "POST", f"{SESSIONS}/short:run", json={"newMessage": _message("pause")}
            ) as short,
            http.stream(
                "POST", f"{SESSIONS}/long:run", json={"newMessage": _message("slow")}
            ) as long,
        ):
            short_stream, _ = await _read_until_call(short)
            long_stream, long_call = await _read_until_call(long)
            live = await ws_connect(_live_url(draining_server, "live"))
            await live.send(json.dumps({"content": _message("chat")}))
            assert json.loads(await live.recv())  # the connection holds its session
            draining_server.process.send_signal(signal.SIGTERM)
            signalled = time.monotonic()
            # The live socket is closed at once with 1012 (reconnect elsewhere).
            code, _ = await _close_of(live)
            assert code == 1012

            ready = await http.get("/readyz")
            assert ready.status_code == 503 and ready.json()["code"] == "shutting_down"
            late = await http.post(f"{SESSIONS}/late:run", json={"newMessage": _message("chat")})
            assert late.status_code == 503 and late.json()["code"] == "shutting_down"
            assert late.headers["retry-after"] == "1"

            _, short_end = await _end(short_stream)  # finishes within the drain
            assert short_end["reason"] == "completed"
            _, long_end = await _end(long_stream)  # cancelled when the drain runs out
            assert long_end["reason"] == "cancelled"
            assert time.monotonic() - signalled >= DRAIN_SECONDS
    exit_code = await asyncio.to_thread(draining_server.process.wait, WAIT_SECONDS)
    assert exit_code in (0, -signal.SIGTERM)

    connection = await asyncpg.connect(asyncpg_dsn(pg_db_url))
    try:
        rows = await connection.fetch("SELECT session_id, status FROM runs ORDER BY session_id")
        events = await connection.fetch(
            "SELECT event_json FROM events WHERE session_id = 'long' ORDER BY seq"
        )
    finally:
        await connection.close()
    assert [(r["session_id"], r["status"]) for r in rows] == [
        ("live", "cancelled"),  # closed by the drain, not by its client
        ("long", "cancelled"),
        ("short", "completed"),
    ]
    stored = [json.loads(r["event_json"]) for r in events]
    assert_well_formed(stored)
    call = _calls(long_call.json())[0]
    assert _responses(stored[-1]) == [
        {"id": call["id"], "name": "slow_tool", "response": {"error": "cancelled"}}
    ]
