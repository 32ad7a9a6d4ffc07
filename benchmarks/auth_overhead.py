"""CPU per chat run with API-key auth on vs off, in process (no sockets, no loadgen).

Serves `tests/e2e/agents_fixture` (the `scripted` app answers from a ScriptedModel, no
network) on a SQLite file through `httpx.ASGITransport`, and measures this process's CPU time
for `--runs` sequential JSON-mode `:run` calls on fresh sessions, alternating auth off and on
for `--rounds` rounds. With auth on, every request carries a cached API key, so the added
cost is the middleware plus one in-process cache hit.

    .venv/bin/python benchmarks/auth_overhead.py [--runs 300] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time
from pathlib import Path

import httpx

from app.server.app import create_app
from app.server.settings import Settings
from app.sessions.migration import upgrade

AGENTS = Path(__file__).resolve().parent.parent / "tests" / "e2e" / "agents_fixture"
MESSAGE = {"newMessage": {"role": "user", "parts": [{"text": "hi"}]}, "createSession": True}


async def measure(db_url: str, auth: str, runs: int) -> float:
    """Return CPU milliseconds per run."""
    app = create_app(Settings(database_url=db_url, agents_dir=AGENTS, auth=auth))
    async with app.router.lifespan_context(app):
        headers = {"Accept": "application/json"}
        if auth != "none":
            key, _ = await app.state.services.authenticator.api_keys.create("u1")
            headers["Authorization"] = f"Bearer {key}"
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for i in range(20):  # warm-up
                await client.post(
                    f"/apps/scripted/users/u1/sessions/w{auth}{i}:run",
                    json=MESSAGE,
                    headers=headers,
                )
            start = time.process_time()
            for i in range(runs):
                response = await client.post(
                    f"/apps/scripted/users/u1/sessions/{auth}{i}{time.time_ns()}:run",
                    json=MESSAGE,
                    headers=headers,
                )
                assert response.status_code == 200, response.text
            return (time.process_time() - start) * 1000 / runs


async def main() -> None:
    """Run the rounds and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    results: dict[str, list[float]] = {"none": [], "api_key": []}
    with tempfile.TemporaryDirectory() as tmp:
        db_url = f"sqlite+aiosqlite:///{tmp}/bench.db"
        await upgrade(db_url)
        for _ in range(args.rounds):
            for auth in results:
                results[auth].append(await measure(db_url, auth, args.runs))
    print("| auth | CPU ms/run (median of rounds) | rounds |")
    print("|---|---|---|")
    for auth, values in results.items():
        rounds = ", ".join(f"{v:.3f}" for v in values)
        print(f"| {auth} | {statistics.median(values):.3f} | {rounds} |")
    off, on = (statistics.median(results[a]) for a in ("none", "api_key"))
    print(f"\napi_key vs none: {100 * (on - off) / off:+.1f}% CPU per run")


if __name__ == "__main__":
    asyncio.run(main())
