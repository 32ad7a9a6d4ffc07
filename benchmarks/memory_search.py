"""Memory search latency with 100,000 remembered entries, on Postgres (and SQLite).

    .venv/bin/python benchmarks/memory_search.py [--entries 100000] [--users 100 1]
        [--samples 500] [--sqlite] [--database-url postgresql+asyncpg://...]

Starts its own Postgres cluster (app.testing.postgres: initdb + pg_ctl, fsync off, loopback
TCP) unless `--database-url` names a server where it may CREATE DATABASE, migrates a fresh
database per run with alembic, and fills it through `DatabaseMemoryService.add_session_to_memory`
with `--entries` chat turns: sessions of 20 turns spread over `--users` users (100: 1,000
entries each; 1: one user holding all of them, the worst case for one search).

The text is synthetic but shaped like chat: words drawn from a 20,000-word vocabulary with a
Zipf distribution (a few words are everywhere, most are rare), mixed with English stop words.
Each query is a short question built the same way ("what is my <word> <word>"), so common
words match thousands of entries and rare ones a handful. Searches use the service's default
limit (10) for a random user, after 50 warm-up searches, on an engine without pool pre-ping
(as the HTTP server runs it); the table shows median, p95 and p99 latency in ms, this
process's CPU per search (`time.process_time`), Postgres's own execution time of the same
search (`EXPLAIN ANALYZE`, median of 100: the part the machine's load inflates least), and
how many memories a search returned.
`--sqlite` runs the same on a SQLite file (FTS5).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import sqlalchemy as sa
from google.genai import types
from sqlalchemy.engine import make_url

from app.events import Event
from app.memory import DatabaseMemoryService
from app.memory.base_memory_service import DEFAULT_SEARCH_LIMIT
from app.memory.database_memory_service import POSTGRES_SEARCH, query_words
from app.sessions import Session
from app.sessions.migration import upgrade
from app.testing.postgres import PostgresCluster

APP = "bench"
TURNS_PER_SESSION = 20
VOCABULARY = 20_000
STOP_WORDS = [
    "i",
    "my",
    "the",
    "a",
    "is",
    "to",
    "and",
    "of",
    "in",
    "it",
    "you",
    "that",
    "was",
    "for",
    "on",
    "with",
    "me",
    "have",
    "do",
    "what",
]
SYLLABLES = [
    "ka",
    "lo",
    "mi",
    "ne",
    "ru",
    "sa",
    "ti",
    "vo",
    "be",
    "da",
    "fi",
    "gu",
    "ho",
    "ju",
    "ke",
    "la",
    "mo",
    "nu",
    "pe",
    "qui",
    "ra",
    "se",
    "to",
    "vu",
]


def vocabulary(rng: random.Random) -> list[str]:
    """Distinct pseudo-words of 2 to 4 syllables."""
    words: dict[str, None] = {}
    while len(words) < VOCABULARY:
        words.setdefault("".join(rng.choices(SYLLABLES, k=rng.randint(2, 4))), None)
    return list(words)


@dataclass
class Corpus:
    """Draws words with a Zipf distribution over the vocabulary."""

    rng: random.Random
    words: list[str]

    def __post_init__(self) -> None:
        weights = [1 / (rank + 1) ** 1.1 for rank in range(len(self.words))]
        total = sum(weights)
        self.cumulative = list(_accumulate(w / total for w in weights))

    def word(self) -> str:
        return self.rng.choices(self.words, cum_weights=self.cumulative)[0]

    def sentence(self, length: int) -> str:
        parts = [
            self.rng.choice(STOP_WORDS) if self.rng.random() < 0.4 else self.word()
            for _ in range(length)
        ]
        return " ".join(parts).capitalize() + "."

    def question(self) -> str:
        return f"what is my {' '.join(self.word() for _ in range(self.rng.randint(1, 3)))}"


def _accumulate(values: Iterator[float]) -> Iterator[float]:
    total = 0.0
    for value in values:
        total += value
        yield total


def sessions(corpus: Corpus, entries: int, users: int) -> Iterator[Session]:
    """Yield sessions of chat turns, `entries` turns in all, round-robin over the users."""
    timestamp = 1_750_000_000.0
    for index in range(0, entries, TURNS_PER_SESSION):
        events = []
        for turn in range(min(TURNS_PER_SESSION, entries - index)):
            timestamp += 7.0
            author = "user" if turn % 2 == 0 else "assistant"
            text = corpus.sentence(corpus.rng.randint(6, 30))
            events.append(
                Event(
                    author=author,
                    timestamp=timestamp,
                    content=types.Content(
                        role="user" if author == "user" else "model",
                        parts=[types.Part(text=text)],
                    ),
                )
            )
        user = f"user-{(index // TURNS_PER_SESSION) % users}"
        yield Session(id=f"s-{index}", app_name=APP, user_id=user, events=events)


@dataclass
class Result:
    """One measured configuration."""

    backend: str
    users: int
    entries: int
    fill_seconds: float
    latencies_ms: list[float]
    cpu_us: float
    found: list[int]
    server_ms: list[float]

    def row(self) -> str:
        q = statistics.quantiles(self.latencies_ms, n=100)
        per_user = self.entries // self.users
        server = f"{statistics.median(self.server_ms):.2f}" if self.server_ms else "-"
        return (
            f"| {self.backend} | {self.users:,} x {per_user:,} | "
            f"{statistics.median(self.latencies_ms):.2f} | {q[94]:.2f} | {q[98]:.2f} | "
            f"{self.cpu_us:.0f} | {server} | {statistics.median(self.found):.0f} | "
            f"{self.entries / self.fill_seconds:,.0f} |"
        )


async def measure(backend: str, url: str, entries: int, users: int, samples: int) -> Result:
    """Migrate, fill, and time `samples` searches."""
    await upgrade(url)
    rng = random.Random(15)
    corpus = Corpus(rng, vocabulary(rng))
    # No pre-ping, as the HTTP server runs it (a round trip saved per search).
    service = DatabaseMemoryService(url, pool_pre_ping=False)
    try:
        start = time.perf_counter()
        for session in sessions(corpus, entries, users):
            await service.add_session_to_memory(session)
        fill_seconds = time.perf_counter() - start
        if backend == "postgres":
            async with service.engine.connect() as conn:
                await conn.exec_driver_sql("ANALYZE memory_entries")
        queries = [(f"user-{rng.randrange(users)}", corpus.question()) for _ in range(samples)]
        for user, query in queries[:50]:  # warm-up: caches, first plans
            await service.search_memory(app_name=APP, user_id=user, query=query)
        latencies, found = [], []
        cpu = 0.0
        for user, query in queries:
            cpu_start = time.process_time()
            start = time.perf_counter()
            response = await service.search_memory(app_name=APP, user_id=user, query=query)
            latencies.append((time.perf_counter() - start) * 1000)
            cpu += time.process_time() - cpu_start
            found.append(len(response.memories))
        server_ms = await execution_times(service, queries[:100]) if backend == "postgres" else []
    finally:
        await service.close()
    return Result(
        backend, users, entries, fill_seconds, latencies, cpu / samples * 1e6, found, server_ms
    )


async def execution_times(
    service: DatabaseMemoryService, queries: list[tuple[str, str]]
) -> list[float]:
    """Return Postgres's own execution time of each search (EXPLAIN ANALYZE), in ms."""
    explain = sa.text("EXPLAIN (ANALYZE, FORMAT JSON) " + str(POSTGRES_SEARCH.text))
    times = []
    async with service.engine.connect() as conn:
        for user, query in queries:
            params = {
                "language": service.language,
                "query": " or ".join(query_words(query)),
                "app_name": APP,
                "user_id": user,
                "limit": DEFAULT_SEARCH_LIMIT,
            }
            plan = (await conn.execute(explain, params)).scalar_one()
            plan = json.loads(plan) if isinstance(plan, str) else plan
            times.append(float(plan[0]["Execution Time"]))
    return times


async def new_database(server_url: str) -> str:
    """CREATE a fresh database on the server; return its URL."""
    name = f"memory_bench_{uuid.uuid4().hex[:8]}"
    dsn = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


async def drop_database(server_url: str, url: str) -> None:
    """DROP the database `new_database` created."""
    dsn = make_url(server_url).set(drivername="postgresql").render_as_string(hide_password=False)
    conn = await asyncpg.connect(dsn)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{make_url(url).database}" WITH (FORCE)')
    finally:
        await conn.close()


async def run(args: argparse.Namespace, server_url: str) -> list[Result]:
    results = []
    for users in args.users:
        url = await new_database(server_url)
        try:
            results.append(await measure("postgres", url, args.entries, users, args.samples))
        finally:
            await drop_database(server_url, url)
        print(results[-1].row(), flush=True)
        if args.sqlite:
            with tempfile.TemporaryDirectory() as folder:
                url = f"sqlite+aiosqlite:///{Path(folder) / 'memory.db'}"
                results.append(await measure("sqlite", url, args.entries, users, args.samples))
                print(results[-1].row(), flush=True)
    return results


HEADER = (
    "| backend | users x entries each | p50 ms | p95 ms | p99 ms | CPU/search µs "
    "| in Postgres p50 ms | memories found (median) | fill entries/s |\n"
    "|---|---|---:|---:|---:|---:|---:|---:|---:|"
)


def main() -> None:
    """Start Postgres (unless given one), run the measurements, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--entries", type=int, default=100_000)
    parser.add_argument("--users", type=int, nargs="+", default=[100, 1])
    parser.add_argument("--samples", type=int, default=500)
    parser.add_argument("--sqlite", action="store_true", help="also measure SQLite (FTS5)")
    parser.add_argument("--database-url", help="a Postgres server to use instead of a new one")
    args = parser.parse_args()
    print(HEADER, flush=True)
    if args.database_url:
        asyncio.run(run(args, args.database_url))
        return
    with PostgresCluster.start_new() as cluster:
        asyncio.run(run(args, cluster.url()))


if __name__ == "__main__":
    main()
