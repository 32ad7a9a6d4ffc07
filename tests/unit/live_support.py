"""Helpers shared by the live tests: drive `run_live` and describe events as short lines."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from typing import Any

from google.genai import types

from app.agents import Agent, LiveRequestQueue, RunConfig
from app.events import Event
from app.runners import InMemoryRunner

APP = "live_app"
PCM_IN = "audio/pcm;rate=16000"
TIMEOUT = 10.0


def user(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=text)])


def get_time(tz: str) -> dict[str, str]:
    """Return the time in a time zone."""
    return {"tz": tz, "time": "12:00"}


def describe(event: Event) -> str:
    """One line per event: `~` marks a partial (streamed, not stored), `=` a stored one."""
    mark = "~" if event.partial else "="
    who = event.author
    if event.error_code:
        return f"{who} error {event.error_code}"
    if event.turn_complete:
        return f"{who} turn_complete"
    if event.interrupted:
        return f"{who} interrupted"
    if event.input_transcription:
        return f"{who} input{mark}{event.input_transcription.text}"
    if event.output_transcription:
        return f"{who} output{mark}{event.output_transcription.text}"
    assert event.content is not None and event.content.parts, event
    part = event.content.parts[0]
    if part.function_call:
        return f"{who} call {part.function_call.name}"
    if part.function_response:
        return f"{who} response {part.function_response.name}"
    if part.inline_data:
        return f"{who} audio{mark}"
    return f"{who} text{mark}{event.text()}"


def squash(lines: list[str]) -> list[str]:
    """Collapse runs of identical lines (audio chunks) into one."""
    return [line for i, line in enumerate(lines) if i == 0 or lines[i - 1] != line]


class LiveRun:
    """Drive one `run_live` in a task; wait for events with a timeout, never a sleep."""

    def __init__(self, runner: InMemoryRunner, run_config: RunConfig | None = None) -> None:
        self.runner = runner
        self.queue = LiveRequestQueue()
        self.events: list[Event] = []
        self._seen = 0
        self._arrived = asyncio.Condition()
        self.done = False
        self.task = asyncio.create_task(self._consume(run_config))

    async def _consume(self, run_config: RunConfig | None) -> None:
        try:
            async with contextlib.aclosing(
                self.runner.run_live(
                    user_id="u",
                    session_id="s",
                    live_request_queue=self.queue,
                    run_config=run_config,
                )
            ) as events:
                async for event in events:
                    async with self._arrived:
                        self.events.append(event)
                        self._arrived.notify_all()
        finally:
            async with self._arrived:
                self.done = True
                self._arrived.notify_all()

    async def until(self, stop: Callable[[Event], bool]) -> list[Event]:
        """Return the events after the last call, up to and including the first `stop` one."""
        async with asyncio.timeout(TIMEOUT), self._arrived:
            while True:
                for i in range(self._seen, len(self.events)):
                    if stop(self.events[i]):
                        taken = self.events[self._seen : i + 1]
                        self._seen = i + 1
                        return taken
                if self.done:
                    self.task.result()  # re-raise the run's failure, if any
                    raise AssertionError(f"run ended early: {squash(self.lines())}")
                await self._arrived.wait()

    def lines(self) -> list[str]:
        return [describe(e) for e in self.events]

    async def close(self) -> None:
        """Close the queue and wait (bounded) for the run to end."""
        self.queue.close()
        async with asyncio.timeout(1.0):
            await self.task


def turn_complete(event: Event) -> bool:
    return bool(event.turn_complete)


async def new_runner(agent: Agent, **kwargs: Any) -> InMemoryRunner:
    runner = InMemoryRunner(agent, app_name=APP, **kwargs)
    await runner.session_service.create_session(app_name=APP, user_id="u", session_id="s")
    return runner


async def stored(runner: InMemoryRunner) -> list[str]:
    session = await runner.session_service.get_session(app_name=APP, user_id="u", session_id="s")
    assert session is not None
    return [describe(e) for e in session.events]
