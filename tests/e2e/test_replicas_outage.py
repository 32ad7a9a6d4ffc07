"""A Postgres restart under a steady load of tool runs on two `agent-service serve` processes.

Runs caught by the outage end in-band and their rows are sealed once the database answers
again: no function call is left unanswered, no run row stays `running`, and every session
takes new runs.
"""

from __future__ import annotations

import asyncio
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
from .history import SESSIONS, assert_well_formed, message, responses, stored_events

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


@pytest.fixture
async def run_signals(own_cluster: PostgresCluster) -> AsyncIterator[asyncio.Event]:
    """Set whenever a replica announces something about a run (LISTEN on the runs channel)."""
    signalled = asyncio.Event()
    connection = await asyncpg.connect(asyncpg_dsn(own_cluster.url()))
    await connection.add_listener(CHANNEL, lambda *_: signalled.set())
    try:
        yield signalled
    finally:
        connection.terminate()  # the server restarted under it: no clean goodbye


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
    run_signals: asyncio.Event,
) -> None:
    a, b = outage_replicas
    url = own_cluster.url()
    limits = httpx.Limits(max_connections=50)
    async with (
        httpx.AsyncClient(base_url=a.base_url, timeout=WAIT_SECONDS, limits=limits) as http_a,
        httpx.AsyncClient(base_url=b.base_url, timeout=WAIT_SECONDS, limits=limits) as http_b,
    ):
        sids = [f"s{i}" for i in range(SESSION_COUNT)]
        for sid in sids:
            created = await http_a.post(SESSIONS, json={"sessionId": sid})
            assert created.status_code == 201, created.text
        load = _Load((http_a, http_b))
        # `pause` holds a stored call open for 1.5 s: the restart is sure to catch some.
        commands = ("pause", "tool")
        workers = [
            asyncio.create_task(load.worker(sid, commands[i % 2])) for i, sid in enumerate(sids)
        ]
        try:
            async with asyncio.timeout(WAIT_SECONDS):
                await load.enough.wait()
            failures_before = load.failures
            await asyncio.to_thread(own_cluster.stop, "immediate")
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
        while running := await _running_runs(url):
            remaining = deadline - time.monotonic()
            assert remaining > 0, f"runs left unsealed: {running}"
            run_signals.clear()
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
        repaired = 0
        for sid in sids:
            events = await stored_events(http_b, sid)
            assert_well_formed(events)
            assert json.dumps(events[-1]["content"]).count("sunny") == 1
            repaired += sum(
                r["response"] in ({"error": "cancelled"}, {"error": "run_lost"})
                for event in events
                for r in responses(event)
            )
        # The restart caught stored calls mid-tool (`pause` holds one open for 1.5 s), and
        # their answers were stored for them.
        assert repaired > 0

        runs = [
            run
            for sid in sids
            for run in (
                await http_a.get(f"{SESSIONS}/{sid}/runs", params={"pageSize": 1000})
            ).json()["runs"]
        ]
        assert {r["status"] for r in runs} <= {"completed", "error"}
