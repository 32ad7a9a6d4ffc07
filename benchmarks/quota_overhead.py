"""Server CPU per chat run against real `agent-service serve`: auth off/on, quotas off/on.

Starts a throwaway Postgres, migrates one database, and for each setup starts the production
command (`agent-service serve`, one process) on it, then drives `--runs` chat runs (SSE,
the `metered` test app: one model response reporting 100 tokens, no network) from
`--concurrency` clients, one user per client. The server's CPU time is read from
/proc/<pid>/stat (utime + stime) before and after; the setups alternate for `--rounds`
rounds so machine load drifts hit all of them alike, and the medians are compared.

    auth off     AGENT_SERVICE_AUTH=none, no quota
    api_key      AGENT_SERVICE_AUTH=api_key (each client sends its user's key), no quota
    api_key+quota  the same plus every quota, set high enough never to refuse: per run
                 a budget read, an active-run reservation and release, a rate-window
                 increment and a token-counter write (5 statements)

    .venv/bin/python benchmarks/quota_overhead.py [--runs 400] [--concurrency 4] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from app.server.security.api_keys import ApiKeyStore
from app.sessions._engine import create_engine
from app.sessions.migration import upgrade
from app.testing.postgres import PostgresCluster, find_bin_dir, free_port

ROOT = Path(__file__).resolve().parent.parent
AGENT_SERVICE = Path(sys.executable).with_name("agent-service")
AGENTS = ROOT / "tests" / "e2e" / "agents_fixture"
TICKS = os.sysconf("SC_CLK_TCK")
QUOTAS = {
    "AGENT_SERVICE_RUN_RATE": "1000000000/minute",
    "AGENT_SERVICE_MAX_ACTIVE_RUNS_PER_USER": "1000",
    "AGENT_SERVICE_TOKEN_BUDGET": "1000000000000/day",
}
SETUPS: dict[str, dict[str, str]] = {
    "auth off": {"AGENT_SERVICE_AUTH": "none"},
    "api_key": {"AGENT_SERVICE_AUTH": "api_key"},
    "api_key+quota": {"AGENT_SERVICE_AUTH": "api_key", **QUOTAS},
}


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, in seconds."""
    with open(f"/proc/{pid}/stat", "rb") as f:
        fields = f.read().rsplit(b")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICKS


def load_average() -> str:
    """The 1, 5 and 15 minute load averages."""
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def start(url: str, env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    """Start `agent-service serve`; return it and its base URL once healthy."""
    port = free_port()
    environment = {
        **os.environ,
        "AGENT_SERVICE_DATABASE_URL": url,
        "AGENT_SERVICE_AGENTS_DIR": str(AGENTS),
        "AGENT_SERVICE_LOG_LEVEL": "warning",
        **env,
    }
    process = subprocess.Popen(
        [str(AGENT_SERVICE), "serve", "--host", "127.0.0.1", "--port", str(port)],
        cwd=ROOT,
        env=environment,
    )
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError("server exited during start-up")
        try:
            if httpx.get(base + "/healthz", timeout=1).status_code == 200:
                return process, base
        except httpx.TransportError:
            pass
        time.sleep(0.1)  # process start-up: nothing to wait on but the socket
    raise RuntimeError("server did not become healthy")


async def drive(base: str, keys: list[str], runs: int, tag: str) -> None:
    """Run `runs` chat runs from len(keys) concurrent clients (client i is user u{i})."""
    counter = iter(range(runs))

    async def worker(index: int, key: str) -> None:
        headers = {"Authorization": f"Bearer {key}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=60) as http:
            for n in counter:
                body = {
                    "newMessage": {"role": "user", "parts": [{"text": "chat 100"}]},
                    "createSession": True,
                }
                path = f"/apps/metered/users/u{index}/sessions/{tag}-{n}:run"
                response = await http.post(path, json=body)
                assert response.status_code == 200, response.text
                assert "event: end" in response.text and "event: error" not in response.text

    await asyncio.gather(*(worker(i, key) for i, key in enumerate(keys)))


async def measure(url: str, env: dict[str, str], keys: list[str], runs: int, tag: str) -> float:
    """CPU ms per run of one server process under this setup."""
    process, base = start(url, env)
    try:
        await drive(base, keys, min(50, runs), f"{tag}w")  # warm-up
        before = cpu_seconds(process.pid)
        await drive(base, keys, runs, tag)
        return (cpu_seconds(process.pid) - before) * 1000 / runs
    finally:
        process.terminate()
        process.wait(timeout=15)


async def main() -> None:
    """Run the rounds and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=400)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    bin_dir = find_bin_dir()
    if bin_dir is None:
        raise SystemExit("PostgreSQL server binaries not found")
    cluster = PostgresCluster(bin_dir, Path(tempfile.mkdtemp(prefix="quota-pg-")), free_port())
    cluster.init()
    cluster.start()
    load_before = load_average()
    try:
        url = cluster.url("postgres")
        await upgrade(url)
        engine = create_engine(url)
        store = ApiKeyStore(engine)
        keys = [(await store.create(f"u{i}"))[0] for i in range(args.concurrency)]
        await engine.dispose()
        results: dict[str, list[float]] = {name: [] for name in SETUPS}
        for round_ in range(args.rounds):
            for name, env in SETUPS.items():
                tag = f"r{round_}{name.replace(' ', '').replace('+', '')}"
                results[name].append(await measure(url, env, keys, args.runs, tag))
    finally:
        cluster.destroy()
    load_after = load_average()
    base = statistics.median(results["auth off"])
    print(
        f"runs {args.runs} x {args.rounds} rounds, concurrency {args.concurrency}; "
        f"load average before {load_before}, after {load_after}\n"
    )
    print("| setup | server CPU ms/run (median) | vs auth off | rounds |")
    print("|---|---|---|---|")
    for name, values in results.items():
        median = statistics.median(values)
        rounds = ", ".join(f"{v:.2f}" for v in values)
        print(f"| {name} | {median:.2f} | {100 * (median - base) / base:+.1f}% | {rounds} |")


if __name__ == "__main__":
    asyncio.run(main())
