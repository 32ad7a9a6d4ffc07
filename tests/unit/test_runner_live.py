"""Runner.run_live end to end: the real google-genai live client against FakeGemini over TLS."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from google.genai import types

from app.agents import Agent, LiveRequestQueue, RunConfig
from app.errors import SessionNotFoundError
from app.models import Gemini
from app.plugins import BasePlugin
from app.runners import InMemoryRunner
from app.testing import FakeGemini, FakeLiveInterrupt, ScriptedModel, serve_fake_gemini
from app.testing.fake_gemini import ServedFakeGemini
from tests.unit.live_support import (
    APP,
    PCM_IN,
    TIMEOUT,
    LiveRun,
    describe,
    get_time,
    new_runner,
    squash,
    stored,
    turn_complete,
    user,
)

# --- runner surface (scripted model) ----------------------------------------------------------


async def test_run_live_on_a_missing_session_raises() -> None:
    runner = InMemoryRunner(Agent(name="bot", model=ScriptedModel()), app_name=APP)
    events = runner.run_live(user_id="u", session_id="nope", live_request_queue=LiveRequestQueue())

    with pytest.raises(SessionNotFoundError):
        await anext(events)


async def test_run_live_copies_custom_metadata_and_runs_after_run() -> None:
    class AfterRun(BasePlugin):
        ran = asyncio.Event()

        async def after_run_callback(self, **kwargs: Any) -> None:
            self.ran.set()

    plugin = AfterRun(name="after")
    runner = await new_runner(
        Agent(name="bot", model=ScriptedModel(responses=["hi"])), plugins=[plugin]
    )
    live = LiveRun(runner, RunConfig(response_modalities=["TEXT"], custom_metadata={"tag": "x"}))

    live.queue.send_content(user("hello"))
    events = await live.until(turn_complete)
    await live.close()

    assert all((e.custom_metadata or {}).get("tag") == "x" for e in events)
    assert plugin.ran.is_set()


async def test_a_model_without_live_support_fails_the_run() -> None:
    class NoLive(ScriptedModel):
        def connect(self, llm_request: Any) -> Any:
            raise NotImplementedError("NoLive does not support live connections.")

    runner = await new_runner(Agent(name="bot", model=NoLive()))
    live = LiveRun(runner)

    with pytest.raises(NotImplementedError):
        async with asyncio.timeout(TIMEOUT):
            await live.task


# --- the real google-genai live client against FakeGemini -------------------------------------


@pytest.fixture(autouse=True)
def gemini_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "test-key")
    for name in ("GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_GENAI_USE_VERTEXAI"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def served() -> AsyncIterator[ServedFakeGemini]:
    async with serve_fake_gemini(FakeGemini()) as served:
        yield served


@pytest.fixture
async def gemini(served: ServedFakeGemini) -> AsyncIterator[Gemini]:
    llm = Gemini(model="gemini-live-2.5-flash-preview", http_options=served.http_options())
    yield llm
    await llm.aclose()


async def test_gemini_text_turn_through_run_live(served: ServedFakeGemini, gemini: Gemini) -> None:
    served.fake.add("You said hello")
    runner = await new_runner(Agent(name="bot", model=gemini, instruction="Be nice."))
    live = LiveRun(runner, RunConfig(response_modalities=["TEXT"]))

    live.queue.send_content(user("hello"))
    events = await live.until(turn_complete)
    await live.close()

    assert [describe(e) for e in events] == [
        "user text=hello",
        "bot text~You ",
        "bot text~said ",
        "bot text~hello",
        "bot text=You said hello",
        "bot turn_complete",
    ]
    setup = served.fake.live_setups[0]
    assert "sessionResumption" in setup or "session_resumption" in setup
    assert await stored(runner) == [
        "user text=hello",
        "bot text=You said hello",
        "bot turn_complete",
    ]


async def test_gemini_audio_turn_through_run_live(served: ServedFakeGemini, gemini: Gemini) -> None:
    served.fake.add("Sunny today")
    runner = await new_runner(Agent(name="bot", model=gemini))
    live = LiveRun(runner)  # AUDIO, transcriptions on by default

    for _ in range(3):
        live.queue.send_realtime(types.Blob(mime_type=PCM_IN, data=b"\x01\x00" * 320))
    live.queue.send_audio_stream_end()
    events = await live.until(turn_complete)
    await live.close()

    assert squash([describe(e) for e in events]) == [
        "user input~(1920 bytes heard)",
        "user input=(1920 bytes heard)",
        "bot audio~",
        "bot output~Sunny today",
        "bot output=Sunny today",
        "bot turn_complete",
    ]
    assert await stored(runner) == [
        "user input=(1920 bytes heard)",
        "bot output=Sunny today",
        "bot turn_complete",
    ]


async def test_gemini_tool_call_through_run_live(served: ServedFakeGemini, gemini: Gemini) -> None:
    served.fake.add(
        types.Part(function_call=types.FunctionCall(name="get_time", args={"tz": "UTC"}))
    )
    served.fake.add("noon")
    runner = await new_runner(Agent(name="bot", model=gemini, tools=[get_time]))
    live = LiveRun(runner, RunConfig(response_modalities=["TEXT"]))

    live.queue.send_content(user("time?"))
    events = await live.until(turn_complete)
    await live.close()

    assert [describe(e) for e in events] == [
        "user text=time?",
        "bot call get_time",
        "bot response get_time",
        "bot text~noon",
        "bot text=noon",
        "bot turn_complete",
    ]
    tool_frames = [
        f.get("tool_response") or f.get("toolResponse")
        for f in served.fake.live_frames
        if "tool_response" in f or "toolResponse" in f
    ]
    assert tool_frames
    responses = tool_frames[0].get("functionResponses") or tool_frames[0]["function_responses"]
    assert responses[0]["id"] == "fc-1"
    assert responses[0]["response"] == {"tz": "UTC", "time": "12:00"}


async def test_gemini_go_away_resumes_with_the_last_handle(
    served: ServedFakeGemini, gemini: Gemini
) -> None:
    served.fake.add("first", "second")
    served.fake.go_away_after_turn()
    runner = await new_runner(Agent(name="bot", model=gemini))
    live = LiveRun(runner, RunConfig(response_modalities=["TEXT"]))

    live.queue.send_content(user("one"))
    await live.until(turn_complete)
    live.queue.send_content(user("two"))
    await live.until(turn_complete)
    await live.close()

    assert served.fake.resumption_handles == [None, "handle-1"]
    assert await stored(runner) == [
        "user text=one",
        "bot text=first",
        "bot turn_complete",
        "user text=two",
        "bot text=second",
        "bot turn_complete",
    ]


async def test_gemini_interruption_through_run_live(
    served: ServedFakeGemini, gemini: Gemini
) -> None:
    served.fake.add(FakeLiveInterrupt("one two three four"))
    runner = await new_runner(Agent(name="bot", model=gemini))
    live = LiveRun(runner, RunConfig(response_modalities=["TEXT"]))

    live.queue.send_content(user("story"))
    await live.until(lambda e: bool(e.interrupted))
    await live.close()

    assert await stored(runner) == ["user text=story", "bot text=one two ", "bot interrupted"]
