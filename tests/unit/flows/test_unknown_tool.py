"""A call to a tool the agent lacks goes through the callbacks as in the reference runtime."""

from __future__ import annotations

from typing import Any

import pytest
from google.genai import types

from app.agents import Agent
from app.events import Event
from app.plugins import BasePlugin
from app.runners import InMemoryRunner
from app.testing import ScriptedModel, function_call


def known(x: int) -> dict[str, Any]:
    """A tool the agent has."""
    return {"x": x}


async def run(agent: Agent, plugins: list[BasePlugin] | None = None) -> list[Event]:
    runner = InMemoryRunner(agent=agent, app_name="tools", plugins=plugins)
    session = await runner.session_service.create_session(app_name="tools", user_id="u")
    message = types.Content(role="user", parts=[types.Part(text="go")])
    return [
        e async for e in runner.run_async(user_id="u", session_id=session.id, new_message=message)
    ]


def agent(**callbacks: Any) -> Agent:
    model = ScriptedModel(responses=[function_call("imaginary", {"q": 1}, id="c1"), "done"])
    return Agent(name="a", model=model, tools=[known], **callbacks)


async def test_without_a_callback_result_the_run_fails_naming_the_available_tools() -> None:
    seen: list[str] = []

    def on_error(tool, args, tool_context, error):  # type: ignore[no-untyped-def]
        seen.append(f"{tool.name}:{type(error).__name__}")

    with pytest.raises(ValueError, match=r"Tool 'imaginary' not found\.\nAvailable tools: known"):
        await run(agent(on_tool_error_callback=on_error))
    assert seen == ["imaginary:ValueError"]


async def test_an_error_callback_result_becomes_the_response() -> None:
    def on_error(tool, args, tool_context, error):  # type: ignore[no-untyped-def]
        return {"fallback": tool.name, "args": args, "why": str(error).splitlines()[0]}

    events = await run(agent(on_tool_error_callback=on_error))
    response = events[1].get_function_responses()[0]
    assert response.id == "c1" and response.name == "imaginary"
    assert response.response == {
        "fallback": "imaginary",
        "args": {"q": 1},
        "why": "Tool 'imaginary' not found.",
    }
    assert events[-1].text() == "done"


async def test_a_plugin_error_callback_answers_before_the_agents() -> None:
    class Recover(BasePlugin):
        async def on_tool_error_callback(self, *, tool, tool_args, tool_context, error):  # type: ignore[no-untyped-def]
            return {"from": "plugin"}

    def on_error(tool, args, tool_context, error):  # type: ignore[no-untyped-def]
        raise AssertionError("the plugin answered first")

    events = await run(agent(on_tool_error_callback=on_error), plugins=[Recover("recover")])
    assert events[1].get_function_responses()[0].response == {"from": "plugin"}


async def test_a_before_tool_callback_may_answer_and_after_tool_callbacks_still_run() -> None:
    def before(tool, args, tool_context):  # type: ignore[no-untyped-def]
        return {"stub": True}

    def after(tool, args, tool_context, tool_response):  # type: ignore[no-untyped-def]
        return {**tool_response, "after": tool.name}

    events = await run(agent(before_tool_callback=before, after_tool_callback=after))
    assert events[1].get_function_responses()[0].response == {"stub": True, "after": "imaginary"}


async def test_a_known_tool_that_raises_still_reports_the_error_to_the_model() -> None:
    def broken(x: int) -> dict[str, Any]:
        """Always fails."""
        raise RuntimeError("backend down")

    model = ScriptedModel(responses=[function_call("broken", {"x": 1}), "sorry"])
    events = await run(Agent(name="a", model=model, tools=[broken]))
    assert events[1].get_function_responses()[0].response == {"error": "RuntimeError: backend down"}
    assert events[-1].text() == "sorry"
