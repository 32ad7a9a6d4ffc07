"""Runs across replicas: the latency of a cross-replica cancel and of a 1,000-event reattach.

Starts a throwaway Postgres and two `agent-service serve` processes (replicas A and B) on it,
serving the `scripted` test app (tests/e2e/agents_fixture), then measures:

- cancel: a `slow` run streams from A; once its tool call is stored, B answers
  `POST .../runs/{id}:cancel?wait=true`. Timed from the request until A's stream has its
  `end` frame (reason `cancelled`), i.e. the run stopped on A, its open call was answered and
  its end stored and announced.
- reattach: one run stores ~1,000 events (a tool loop capped by maxLlmCalls); B replays it
  with `GET .../runs/{id}/events?after=0` until `end`.

    .venv/bin/python benchmarks/runs_latency.py [--cancels 30] [--replays 10]

`benchmarks/http_load.py --runs-latency` runs it after the HTTP load, in the same command.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from pathlib import Path

import httpx

from app.sessions.migration import upgrade
from app.testing.postgres import PostgresCluster, free_port

ROOT = Path(__file__).resolve().parent.parent
AGENTS = ROOT / "tests" / "e2e" / "agents_fixture"
SESSIONS = "/apps/scripted/users/bench/sessions"


async def main() -> None:
    """Measure and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cancels", type=int, default=30)
    parser.add_argument("--replays", type=int, default=10)
    parser.add_argument("--llm-calls", type=int, default=500, help="~2 events per call")
    args = parser.parse_args()
    print("\n".join(await measure(args.cancels, args.replays, args.llm_calls)))


async def measure(cancels: int = 30, replays: int = 10, llm_calls: int = 500) -> list[str]:
    """Start a throwaway Postgres and two replicas, measure, return one line per figure."""
    cluster = PostgresCluster.start_new()
    servers: list[subprocess.Popen[bytes]] = []
    try:
        url = cluster.url("postgres")
        await upgrade(url)
        ports = [free_port(), free_port()]
        for port in ports:
            servers.append(_serve(url, port))
        bases = [f"http://127.0.0.1:{port}" for port in ports]
        for base in bases:
            await _wait_healthy(base)
        async with (
            httpx.AsyncClient(base_url=bases[0], timeout=60) as a,
            httpx.AsyncClient(base_url=bases[1], timeout=60) as b,
        ):
            timings = [await _cancel_once(a, b, i) for i in range(cancels)]
            replay, count = await _reattach(a, b, llm_calls, replays)
        return [
            f"cross-replica cancel (n={len(timings)}): {_summary(timings)}",
            f"reattach replaying {count} events (n={len(replay)}): {_summary(replay)}",
        ]
    finally:
        for server in servers:
            server.terminate()
            server.wait(timeout=15)
        cluster.destroy()


def _serve(url: str, port: int) -> subprocess.Popen[bytes]:
    env = {
        "PATH": str(Path(sys.executable).parent),
        "AGENT_SERVICE_DATABASE_URL": url,
        "AGENT_SERVICE_AGENTS_DIR": str(AGENTS),
        "AGENT_SERVICE_LOG_LEVEL": "warning",
    }
    command = [str(Path(sys.executable).with_name("agent-service")), "serve", "--port", str(port)]
    return subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)


async def _wait_healthy(base: str) -> None:
    async with httpx.AsyncClient(base_url=base) as client, asyncio.timeout(120):
        while True:
            try:
                if (await client.get("/healthz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)  # process start-up: nothing to wait on but the socket


async def _cancel_once(a: httpx.AsyncClient, b: httpx.AsyncClient, index: int) -> float:
    sid = f"cancel-{index}"
    await a.post(SESSIONS, json={"sessionId": sid})
    body = {"newMessage": {"parts": [{"text": "slow"}]}}
    async with a.stream("POST", f"{SESSIONS}/{sid}:run", json=body) as response:
        invocation = response.headers["x-invocation-id"]
        lines = response.aiter_lines()
        async for line in lines:
            if line.startswith("id: "):  # the stored tool call
                break
        started = time.perf_counter()
        cancel = asyncio.create_task(
            b.post(f"{SESSIONS}/{sid}/runs/{invocation}:cancel", params={"wait": "true"})
        )
        async for line in lines:
            if line == "event: end":
                break
        ended = time.perf_counter() - started
    assert (await cancel).json()["status"] == "cancelled"
    return ended * 1000


async def _reattach(
    a: httpx.AsyncClient, b: httpx.AsyncClient, llm_calls: int, replays: int
) -> tuple[list[float], int]:
    await a.post(SESSIONS, json={"sessionId": "replay"})
    body = {"newMessage": {"parts": [{"text": "loop"}]}, "runConfig": {"maxLlmCalls": llm_calls}}
    done = await a.post(f"{SESSIONS}/replay:run", json=body, headers={"accept": "application/json"})
    invocation = done.headers["x-invocation-id"]
    timings = []
    count = 0
    for _ in range(replays):
        started = time.perf_counter()
        response = await b.get(f"{SESSIONS}/replay/runs/{invocation}/events", params={"after": 0})
        timings.append((time.perf_counter() - started) * 1000)
        count = response.text.count("\nid: ") + response.text.startswith("id: ")
    return timings, count


def _summary(values: list[float]) -> str:
    ordered = sorted(values)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    return f"p50 {statistics.median(ordered):.1f} ms, p99 {p99:.1f} ms, max {ordered[-1]:.1f} ms"


if __name__ == "__main__":
    asyncio.run(main())
