"""The offline DemoModel and the example agents it powers (no network, no API key)."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from google.genai import types

from app.agents import Agent, LiveRequestQueue, RunConfig, StreamingMode
from app.events import Event
from app.runners import InMemoryRunner
from app.server.loader import LoadedApp, load_agents
from app.testing.demo_model import DemoModel

AGENTS_DIR = Path(__file__).resolve().parents[3] / "agents"


def get_weather(city: str) -> dict[str, object]:
    """Return the weather for a city."""
    return {"city": city, "forecast": "sunny"}


def user(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=text)])


async def turn(runner: InMemoryRunner, text: str, **kwargs: object) -> list[Event]:
    return await runner.run_debug(text, quiet=True, **kwargs)  # type: ignore[arg-type]


async def test_demo_model_calls_the_matching_tool_then_summarizes() -> None:
    runner = InMemoryRunner(Agent(name="a", model=DemoModel(), tools=[get_weather]), app_name="d")
    events = await turn(runner, "What is the weather in Paris?")
    call = events[0].get_function_calls()[0]
    assert call.name == "get_weather" and call.args == {"city": "Paris"}
    assert "sunny" in events[-1].text()


async def test_demo_model_without_matching_tool_greets_and_lists_tools() -> None:
    runner = InMemoryRunner(Agent(name="a", model=DemoModel(), tools=[get_weather]), app_name="d")
    events = await turn(runner, "hello")
    assert len(events) == 1 and "get_weather" in events[0].text()


async def test_demo_model_streams_word_by_word() -> None:
    runner = InMemoryRunner(Agent(name="a", model=DemoModel()), app_name="d")
    events = await turn(
        runner, "hello there", run_config=RunConfig(streaming_mode=StreamingMode.SSE)
    )
    partial = [e for e in events if e.partial]
    assert len(partial) > 3
    assert "".join(e.text() for e in partial) == events[-1].text()


@pytest.fixture
def example_apps(monkeypatch: pytest.MonkeyPatch) -> dict[str, LoadedApp]:
    for name in ("GOOGLE_API_KEY", "GEMINI_API_KEY", "GOOGLE_GENAI_USE_VERTEXAI"):
        monkeypatch.delenv(name, raising=False)
    loaded = load_agents(AGENTS_DIR)
    apps = {a.name: a for a in loaded if isinstance(a, LoadedApp)}
    assert set(apps) >= {"assistant", "travel_desk"}, loaded
    return apps


async def test_example_assistant_uses_its_tools_offline(example_apps: dict[str, LoadedApp]) -> None:
    runner = InMemoryRunner(example_apps["assistant"].root_agent, app_name="assistant")
    events = await turn(runner, "What is 12 * (3 + 4)?")
    assert events[0].get_function_calls()[0].name == "calculate"
    assert "84" in events[-1].text()
    events = await turn(runner, "What time is it in Europe/Paris?")
    assert events[0].get_function_calls()[0].name == "get_current_time"


async def test_example_travel_desk_transfers_to_a_specialist(
    example_apps: dict[str, LoadedApp],
) -> None:
    runner = InMemoryRunner(example_apps["travel_desk"].root_agent, app_name="travel_desk")
    events = await turn(runner, "Find me a hotel in Rome")
    transfer = events[0].get_function_calls()[0]
    assert transfer.name == "transfer_to_agent"
    target = transfer.args["agent_name"]
    assert any(e.author == target for e in events[2:])


async def test_demo_model_answers_live_turns_with_tools() -> None:
    model = DemoModel()
    runner = InMemoryRunner(Agent(name="a", model=model, tools=[get_weather]), app_name="d")
    await runner.session_service.create_session(app_name="d", user_id="u", session_id="s")
    queue = LiveRequestQueue()
    queue.send_content(user("weather in Paris"))
    seen: list[Event] = []

    async def consume() -> None:
        async for event in runner.run_live(user_id="u", session_id="s", live_request_queue=queue):
            seen.append(event)
            if event.turn_complete:
                queue.close()

    await asyncio.wait_for(consume(), 10)
    assert any(c.name == "get_weather" for e in seen for c in e.get_function_calls())
    audio = [
        p for e in seen if e.content for p in e.content.parts or [] if p.inline_data is not None
    ]
    assert audio and audio[0].inline_data.mime_type == "audio/pcm;rate=24000"
    transcript = "".join(
        e.output_transcription.text or "" for e in seen if e.output_transcription and not e.partial
    )
    assert "sunny" in transcript


async def test_example_assistant_remembers_closed_sessions_offline(
    example_apps: dict[str, LoadedApp],
) -> None:
    runner = InMemoryRunner(example_apps["assistant"].root_agent, app_name="assistant")
    await turn(runner, "My favourite colour is teal", session_id="first")
    first = await runner.session_service.get_session(
        app_name="assistant", user_id="debug_user_id", session_id="first"
    )
    assert first is not None and await runner.close_session(first)

    # preload_memory: the matching memory is in the instruction, and the demo model says so.
    events = await turn(runner, "Which colour is my favourite?", session_id="second")
    assert "My favourite colour is teal" in events[-1].text()

    # load_memory: the model searches memory itself.
    events = await turn(runner, "Do you remember my colour?", session_id="third")
    call = events[0].get_function_calls()[0]
    assert call.name == "load_memory" and call.args == {"query": "Do you remember my colour?"}
    assert "teal" in events[-1].text()
