"""Session store latency and CPU on a local throwaway Postgres: append_event, loading a turn.

    .venv/bin/python benchmarks/session_store.py [--sizes 10 1000 10000] [--samples 500]
        [--no-pre-ping]

Starts its own cluster (app.testing.postgres: initdb + pg_ctl, fsync off, loopback TCP),
migrates it with alembic, and for sessions holding 10, 1,000 and 10,000 events measures:

- `append_event`: one event with text content and a state delta (the single-statement write);
- turn load, own append: `get_session_shared` (what the Runner calls each turn; the public
  `get_session` adds a copy of every event) after this process appended (its cache is current);
- turn load, other append: the same after another service (a second replica) appended,
  so the cache fetches and validates the one new event;
- cold load: the same with the cache disabled (every event read and validated), for scale.

Prints a Markdown table of median and p99 latency in milliseconds, then one of this process's
CPU time per operation in microseconds (`time.process_time`; the Postgres server's CPU is not
included). `--no-pre-ping` creates the services with `pool_pre_ping=False`, as the HTTP server
does.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from typing import Any

from google.genai import types

from app.events import Event, EventActions
from app.sessions import DatabaseSessionService, Session
from app.sessions.migration import upgrade
from app.testing.postgres import PostgresCluster

APP, USER = "bench", "user"
TEXT = "The quick brown fox jumps over the lazy dog. " * 4  # ~180 bytes, a short chat turn


def make_event(i: int) -> Event:
    """A stored chat event: text content plus a one-key state delta."""
    return Event(
        author="user" if i % 2 == 0 else "assistant",
        invocation_id=f"e-{i // 2}",
        content=types.Content(
            role="user" if i % 2 == 0 else "model", parts=[types.Part(text=f"{i} {TEXT}")]
        ),
        actions=EventActions(state_delta={"turns": i}),
    )


async def fill(service: DatabaseSessionService, session: Session, count: int) -> None:
    """Append `count` events (through the service: the rows are what the API writes)."""
    for i in range(count):
        await service.append_event(session, make_event(i))


Summary = tuple[float, float, float]
"""Median and p99 latency in ms, mean CPU time of this process in µs."""


async def timed(
    samples: int,
    step: Callable[[int], Awaitable[None]],
    setup: Callable[[int], Awaitable[None]] | None = None,
) -> Summary:
    """Run `setup(i)` untimed and `step(i)` timed, `samples` times; summarize the steps."""
    wall = []
    cpu = 0.0
    for i in range(samples):
        if setup is not None:
            await setup(i)
        cpu_start = time.process_time()
        start = time.perf_counter()
        await step(i)
        wall.append((time.perf_counter() - start) * 1000)
        cpu += time.process_time() - cpu_start
    return statistics.median(wall), statistics.quantiles(wall, n=100)[98], cpu / samples * 1e6


async def measure(
    url: str, size: int, samples: int, prefix: str = "s", **options: Any
) -> dict[str, Summary]:
    """Measure every operation on sessions that hold about `size` events.

    Each sample appends one event, so small sessions are spread over many copies (round robin)
    to stay near `size`; over a run a session grows by at most ~3 * samples / copies events.
    """
    service = DatabaseSessionService(url, **options)
    replica = DatabaseSessionService(url, **options)
    cold = DatabaseSessionService(url, cache_size=0, **options)
    copies = max(1, min(samples, 10_000 // size))
    try:
        sessions = []
        for n in range(copies):
            session = await service.create_session(
                app_name=APP, user_id=USER, session_id=f"{prefix}{size}-{n}"
            )
            await fill(service, session, size)
            sessions.append(session)
        keys: list[dict[str, Any]] = [
            {"app_name": APP, "user_id": USER, "session_id": s.id} for s in sessions
        ]
        # Built before timing: creating an event is the caller's cost, not the store's.
        pending = iter([make_event(size + n) for n in range(3 * samples)])

        async def append(i: int) -> None:
            await service.append_event(sessions[i % copies], next(pending))

        async def load(i: int) -> None:
            assert await service.get_session_shared(**keys[i % copies]) is not None

        replica_sessions: list[Session | None] = []

        async def append_elsewhere(i: int) -> None:
            replica_session = replica_sessions[i % copies]
            assert replica_session is not None
            await replica.append_event(replica_session, next(pending))

        async def load_cold(i: int) -> None:
            assert await cold.get_session_shared(**keys[i % copies]) is not None

        for i in range(min(copies, 20)):  # connections, prepared statements
            await load(i)
            await load_cold(i)

        results = {
            "append_event": await timed(samples, append),
            "turn load, own append": await timed(samples, load, setup=append),
        }
        replica_sessions.extend([await replica.get_session(**key) for key in keys])
        results["turn load, other append"] = await timed(samples, load, setup=append_elsewhere)
        results["cold load (no cache)"] = await timed(max(samples // 10, 20), load_cold)
        return results
    finally:
        for s in (service, replica, cold):
            await s.close()


def table(results: dict[int, dict[str, Summary]]) -> str:
    """Render results as Markdown: one row per operation, median/p99 per session size."""
    sizes = sorted(results)
    ops = list(results[sizes[0]])
    head = "| operation | " + " | ".join(f"{s:,} events: median / p99" for s in sizes) + " |"
    rule = "|---|" + "---|" * len(sizes)
    rows = [
        f"| {op} | "
        + " | ".join(f"{results[s][op][0]:.3f} / {results[s][op][1]:.3f} ms" for s in sizes)
        + " |"
        for op in ops
    ]
    return "\n".join([head, rule, *rows])


def cpu_table(results: dict[int, dict[str, Summary]]) -> str:
    """Render this process's mean CPU time per operation as Markdown."""
    sizes = sorted(results)
    ops = list(results[sizes[0]])
    head = "| CPU per operation | " + " | ".join(f"{s:,} events" for s in sizes) + " |"
    rule = "|---|" + "---:|" * len(sizes)
    rows = [
        f"| {op} | " + " | ".join(f"{results[s][op][2]:.0f} µs" for s in sizes) + " |" for op in ops
    ]
    return "\n".join([head, rule, *rows])


async def run(
    url: str, sizes: list[int], samples: int, **options: Any
) -> dict[int, dict[str, Summary]]:
    """Migrate and measure every size."""
    await upgrade(url)
    # Warm-up: imports, first calls, CPU frequency.
    await measure(url, 10, 200, prefix="warm-up", **options)
    return {size: await measure(url, size, samples, **options) for size in sizes}


def main() -> None:
    """Start Postgres, run the measurements, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[10, 1_000, 10_000])
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument(
        "--no-pre-ping",
        action="store_true",
        help="create the services with pool_pre_ping=False, as the HTTP server does",
    )
    args = parser.parse_args()
    options = {"pool_pre_ping": False} if args.no_pre_ping else {}
    with PostgresCluster.start_new() as cluster:
        results = asyncio.run(run(cluster.url(), args.sizes, args.samples, **options))
    print(table(results))
    print()
    print(cpu_table(results))
    for op in results[args.sizes[0]]:
        small, large = results[min(args.sizes)][op][0], results[max(args.sizes)][op][0]
        print(
            f"{op}: {max(args.sizes):,}-event median / {min(args.sizes):,}-event median = "
            f"{large / small:.2f}x"
        )


if __name__ == "__main__":
    main()
