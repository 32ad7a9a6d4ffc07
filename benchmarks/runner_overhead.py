"""CPU time per chat turn and per tool turn as a session grows (InMemoryRunner).

A zero-latency ScriptedModel stands in for the model, so what is measured is the runtime's
own overhead: loading the session, recording the user message, building the request from
the history, running callbacks and tools, storing and yielding events.

    python benchmarks/runner_overhead.py [--turns 50] [--sizes 10,100,500,1000]
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import statistics
import time
from typing import Any

from google.genai import types

from app.agents import Agent
from app.runners import InMemoryRunner
from app.testing import ScriptedModel, function_call

APP = "bench"


def get_weather(city: str) -> dict[str, Any]:
    """Return the weather for a city."""
    return {"city": city, "celsius": 21}


async def grow_to(runner: InMemoryRunner, model: ScriptedModel, sid: str, events: int) -> None:
    """Add chat turns (2 events each) until the session holds at least `events` events."""
    session = await runner.session_service.get_session(app_name=APP, user_id="u", session_id=sid)
    assert session is not None
    missing = max(0, events - len(session.events))
    turns = (missing + 1) // 2
    model.responses.extend(["filler reply"] * turns)
    for _ in range(turns):
        await one_turn(runner, sid, "filler")


async def one_turn(runner: InMemoryRunner, sid: str, text: str) -> int:
    message = types.Content(role="user", parts=[types.Part(text=text)])
    count = 0
    async for _ in runner.run_async(user_id="u", session_id=sid, new_message=message):
        count += 1
    return count


async def measure(kind: str, sizes: list[int], turns: int) -> list[tuple[int, float, float]]:
    """Return (events at start, median CPU ms per turn, p90) for each size."""
    model = ScriptedModel()
    agent = Agent(name="assistant", model=model, instruction="Be brief.", tools=[get_weather])
    runner = InMemoryRunner(agent, app_name=APP)
    sid = f"{kind}-session"
    await runner.session_service.create_session(app_name=APP, user_id="u", session_id=sid)
    rows = []
    for size in sizes:
        await grow_to(runner, model, sid, size)
        model.requests.clear()  # the script's request log is not part of the runtime
        per_turn: list[float] = []
        for _ in range(turns):
            if kind == "chat":
                model.responses.append("ok")
            else:
                model.responses.extend([function_call("get_weather", {"city": "Paris"}), "Sunny."])
            gc.collect()
            start = time.process_time()
            await one_turn(runner, sid, kind)
            per_turn.append((time.process_time() - start) * 1000)
        per_turn.sort()
        rows.append((size, statistics.median(per_turn), per_turn[int(len(per_turn) * 0.9) - 1]))
    return rows


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--turns", type=int, default=200, help="timed turns per size")
    parser.add_argument("--sizes", default="10,100,500,1000", help="session sizes in events")
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    # Warm up imports, caches and the thread pool used by sync tools.
    await measure("tool", [2], 20)
    print("| turn | events in session | CPU ms/turn (median) | CPU ms/turn (p90) |")
    print("|---|---:|---:|---:|")
    for kind in ("chat", "tool"):
        for size, median, p90 in await measure(kind, sizes, args.turns):
            print(f"| {kind} | {size} | {median:.3f} | {p90:.3f} |")


if __name__ == "__main__":
    asyncio.run(main())
