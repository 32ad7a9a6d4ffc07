"""The Runner works unchanged on every session store: memory, SQLite and Postgres."""

from __future__ import annotations

from typing import Any

from google.genai import types

from app.agents import Agent, ParallelAgent, RunConfig, StreamingMode
from app.runners import Runner
from app.sessions import BaseSessionService
from app.testing import ScriptedModel, function_call
from app.tools import ToolContext

from .session_stores import Store

APP = "store_app"


def user(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=text)])


def remember(city: str, tool_context: ToolContext) -> dict[str, Any]:
    """Remember a city in every state scope."""
    tool_context.state["city"] = city
    tool_context.state["user:home"] = city
    tool_context.state["app:visits"] = tool_context.state.get("app:visits", 0) + 1
    tool_context.state["temp:scratch"] = "gone after the run"
    return {"remembered": city}


async def run(runner: Runner, text: str, sid: str = "s", **kwargs: Any) -> list[Any]:
    return [
        e
        async for e in runner.run_async(
            user_id="u", session_id=sid, new_message=user(text), **kwargs
        )
    ]


async def test_tool_turns_persist_and_reload_identically(store: Store) -> None:
    service: BaseSessionService = store.service
    model = ScriptedModel(
        responses=[function_call("remember", {"city": "Oslo"}), "Noted.", "You live in Oslo."]
    )
    runner = Runner(
        app_name=APP,
        agent=Agent(name="a", model=model, tools=[remember], instruction="Home: {user:home?}"),
        session_service=service,
    )
    await service.create_session(app_name=APP, user_id="u", session_id="s")
    first = await run(runner, "I live in Oslo")
    assert [e.seq for e in first] == [2, 3, 4]
    assert "temp:scratch" not in first[1].actions.state_delta
    second = await run(runner, "Where do I live?")
    assert second[-1].text() == "You live in Oslo."
    # The second turn's model call saw the whole history and the stored user: state.
    request = model.requests[-1]
    assert "Home: Oslo" in request.system_instruction_text()
    assert len(request.contents) == 5

    # A fresh service (another replica, or after a restart) reads the same session.
    other = store.replica()
    session = await other.get_session(app_name=APP, user_id="u", session_id="s")
    assert session is not None
    assert [e.seq for e in session.events] == [1, 2, 3, 4, 5, 6]
    assert [e.to_json() for e in session.events[1:4]] == [e.to_json() for e in first]
    assert session.state == {"city": "Oslo", "user:home": "Oslo", "app:visits": 1}


async def test_streamed_partials_are_never_stored(store: Store) -> None:
    service = store.service
    runner = Runner(
        app_name=APP,
        agent=Agent(name="a", model=ScriptedModel(responses=["one two three"])),
        session_service=service,
    )
    await service.create_session(app_name=APP, user_id="u", session_id="s")
    events = await run(runner, "hi", run_config=RunConfig(streaming_mode=StreamingMode.SSE))
    assert sum(1 for e in events if e.partial) == 3
    session = await service.get_session(app_name=APP, user_id="u", session_id="s")
    assert session is not None and [e.text() for e in session.events] == ["hi", "one two three"]


async def test_parallel_branches_append_without_conflicts(store: Store) -> None:
    service = store.service
    branches = [
        Agent(
            name=f"b{i}",
            model=ScriptedModel(
                responses=[function_call("remember", {"city": f"c{i}"}), f"done {i}"]
            ),
            tools=[remember],
        )
        for i in range(3)
    ]
    runner = Runner(
        app_name=APP, agent=ParallelAgent(name="fan", sub_agents=branches), session_service=service
    )
    await service.create_session(app_name=APP, user_id="u", session_id="s")
    events = await run(runner, "go")
    assert len(events) == 9
    session = await service.get_session(app_name=APP, user_id="u", session_id="s")
    assert session is not None
    assert [e.seq for e in session.events] == list(range(1, 11))
    assert {e.author for e in session.events[1:]} == {"b0", "b1", "b2"}
    responses = [r.response for e in session.events for r in e.get_function_responses()]
    assert sorted(r["remembered"] for r in responses) == ["c0", "c1", "c2"]
