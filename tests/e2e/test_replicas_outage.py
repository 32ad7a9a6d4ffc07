"""A Postgres restart under a steady load of tool runs on two `agent-service serve` processes.

Runs caught by the outage end in-band and their rows are sealed once the database answers
again: no function call is left unanswered, no run row stays `running`, and every session
takes new runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from app.runs.notify import CHANNEL
from app.sessions.migration import upgrade
from app.testing.postgres import PostgresCluster, find_bin_dir
from tests.conftest import asyncpg_dsn, run_async

from .conftest import ServerProcess, running_servers
from .history import SESSIONS, assert_well_formed, calls, message, responses, stored_events
from .sse import frames

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(180)]

LEASE_SECONDS = 2.0
SESSION_COUNT = 8
WAIT_SECONDS = 30.0
RUNS_BEFORE_OUTAGE = 16


@pytest.fixture
def own_cluster() -> Iterator[PostgresCluster]:
    """A throwaway Postgres for this test alone: it will be stopped and started again."""
    if find_bin_dir() is None:
        pytest.skip("needs local PostgreSQL server binaries (initdb, pg_ctl) to restart a server")
    cluster = PostgresCluster.start_new()
    try:
        run_async(lambda: upgrade(cluster.url()))
        yield cluster
    finally:
        cluster.destroy()


@pytest.fixture
def outage_replicas(
    own_cluster: PostgresCluster, tmp_path: Path
) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two replicas on the throwaway cluster, with a short run lease."""
    env = {"AGENT_SERVICE_RUN_LEASE_SECONDS": str(LEASE_SECONDS)}
    with running_servers(own_cluster.url(), tmp_path, "a", "b", **env) as (a, b):
        yield a, b


@contextlib.asynccontextmanager
async def _run_signals(url: str) -> AsyncIterator[asyncio.Event]:
    """Set whenever a replica announces something about a run (LISTEN on the runs channel)."""
    signalled = asyncio.Event()
    connection = await asyncpg.connect(asyncpg_dsn(url))
    await connection.add_listener(CHANNEL, lambda *_: signalled.set())
    try:
        yield signalled
    finally:
        await connection.close()


class _Load:
    """One worker per session, alternating replicas, until told to stop."""

    def __init__(self, clients: tuple[httpx.AsyncClient, httpx.AsyncClient]) -> None:
        self.clients = clients
        self.completed = 0
        self.failures = 0
        self.enough = asyncio.Event()
        self.stop = asyncio.Event()
        self.outage_over = False
        self.completed_after: set[str] = set()
        self.all_recovered = asyncio.Event()

    async def worker(self, sid: str, command: str) -> None:
        replicas = itertools.cycle(self.clients)
        for index in itertools.count():
            if self.stop.is_set():
                return
            http = next(replicas)
            try:
                response = await http.post(
                    f"{SESSIONS}/{sid}:run",
                    json={"newMessage": message(f"{command} {index}")},
                    headers={"accept": "application/json"},
                )
                ok = response.status_code == 200
            except httpx.TransportError:
                ok = False
            if not ok:
                self.failures += 1
                await asyncio.sleep(0.2)  # a client's back-off before retrying (409, 503)
                continue
            self.completed += 1
            if self.completed >= RUNS_BEFORE_OUTAGE:
                self.enough.set()
            if self.outage_over:
                self.completed_after.add(sid)
                if len(self.completed_after) == SESSION_COUNT:
                    self.all_recovered.set()


async def _logged(server: ServerProcess, line: str) -> None:
    """Wait until the server logged `line` (its log file is the only sign of it)."""
    async with asyncio.timeout(WAIT_SECONDS):
        while line not in server.log():
            await asyncio.sleep(0.05)


async def _running_runs(url: str) -> list[tuple[str, str, str | None]]:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await connection.fetch(
            "SELECT session_id, status, owner FROM runs WHERE status IN ('running', 'queued')"
        )
    finally:
        await connection.close()
    return [(r["session_id"], r["status"], r["owner"]) for r in rows]


async def test_a_postgres_restart_under_load_leaves_no_dangling_call(
    own_cluster: PostgresCluster,
    outage_replicas: tuple[ServerProcess, ServerProcess],
) -> None:
    a, b = outage_replicas
    url = own_cluster.url()
    limits = httpx.Limits(max_connections=50)
    async with (
        httpx.AsyncClient(base_url=a.base_url, timeout=WAIT_SECONDS, limits=limits) as http_a,
        httpx.AsyncClient(base_url=b.base_url, timeout=WAIT_SECONDS, limits=limits) as http_b,
    ):
        sids = [f"s{i}" for i in range(SESSION_COUNT)]
        for sid in (*sids, "probe"):
            created = await http_a.post(SESSIONS, json={"sessionId": sid})
            assert created.status_code == 201, created.text
        load = _Load((http_a, http_b))
        # `pause` holds a stored call open for 1.5 s: the restart may catch some.
        commands = ("pause", "tool")
        workers = [
            asyncio.create_task(load.worker(sid, commands[i % 2])) for i, sid in enumerate(sids)
        ]
        try:
            async with asyncio.timeout(WAIT_SECONDS):
                await load.enough.wait()
            # The probe makes sure of one: its call is stored, then the database goes away,
            # then its client leaves (the run is cancelled and cannot store its end).
            body = {"newMessage": message("slow")}
            async with http_a.stream("POST", f"{SESSIONS}/probe:run", json=body) as probe:
                async for frame in frames(probe):
                    if frame.id is not None and calls(frame.json()):
                        break
                failures_before = load.failures
                # `fast`: the throwaway cluster commits asynchronously (synchronous_commit=off),
                # so an immediate stop could lose the last commits, which no server can.
                await asyncio.to_thread(own_cluster.stop, "fast")
            await _logged(a, "run end not stored (database unavailable), retrying session=probe")
            await asyncio.to_thread(own_cluster.start)
            restarted = time.monotonic()
            load.outage_over = True
            async with asyncio.timeout(WAIT_SECONDS):
                await load.all_recovered.wait()  # every session took a run after the restart
        finally:
            load.stop.set()
            await asyncio.gather(*workers, return_exceptions=True)
        assert load.failures > failures_before  # the outage did hit the load

        # Every run row ends sealed: in-band failures as soon as the database answers, lost
        # ones once their lease expired. Re-checked at each run signal, bounded.
        deadline = restarted + LEASE_SECONDS + 5
        async with _run_signals(url) as run_signals:  # listening from now on, then checking
            while True:
                run_signals.clear()  # before the check: a signal after it is not lost
                if not (running := await _running_runs(url)):
                    break
                remaining = deadline - time.monotonic()
                assert remaining > 0, f"runs left unsealed: {running}"
                try:
                    async with asyncio.timeout(remaining):
                        await run_signals.wait()
                except TimeoutError:
                    pass  # checked once more, then the assertion above fails

        for index, sid in enumerate(sids):
            assert_well_formed(await stored_events((http_a, http_b)[index % 2], sid))

        async def next_run(index: int, sid: str) -> httpx.Response:
            return await (http_a, http_b)[index % 2].post(
                f"{SESSIONS}/{sid}:run",
                json={"newMessage": message("tool after")},
                headers={"accept": "application/json"},
            )

        after = await asyncio.gather(*(next_run(i, sid) for i, sid in enumerate(sids)))
        assert [r.status_code for r in after] == [200] * SESSION_COUNT
        probe_events = await stored_events(http_a, "probe")
        assert_well_formed(probe_events)
        assert responses(probe_events[2])[0]["response"] == {"error": "cancelled"}
        for sid in sids:
            events = await stored_events(http_b, sid)
            assert_well_formed(events)
            assert json.dumps(events[-1]["content"]).count("sunny") == 1

        runs = [
            run
            for sid in sids
            for run in (
                await http_a.get(f"{SESSIONS}/{sid}/runs", params={"pageSize": 1000})
            ).json()["runs"]
        ]
        assert {r["status"] for r in runs} <= {"completed", "error"}
