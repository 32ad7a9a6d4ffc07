"""A resumable invocation pauses on one service and resumes on another over the same store."""

from __future__ import annotations

from typing import Any

from google.genai import types

from app.agents import Agent, SequentialAgent
from app.apps import App, ResumabilityConfig
from app.runners import Runner
from app.testing import ScriptedModel, function_call
from app.tools import LongRunningFunctionTool

from .session_stores import Store

APP = "resume_app"


def approve(amount: int) -> dict[str, Any]:
    """Ask a human to approve a payment."""
    return {"status": "pending"}


def build_app() -> App:
    payer = Agent(
        name="payer",
        model=ScriptedModel(responses=[function_call("approve", {"amount": 3}), "paid"]),
        tools=[LongRunningFunctionTool(approve)],
    )
    notifier = Agent(name="notifier", model=ScriptedModel(responses=["notified"]))
    return App(
        name=APP,
        root_agent=SequentialAgent(name="flow", sub_agents=[payer, notifier]),
        resumability_config=ResumabilityConfig(is_resumable=True),
    )


async def test_checkpoints_are_stored_and_resume_on_a_fresh_service(store: Store) -> None:
    app = build_app()
    runner = Runner(app=app, session_service=store.service)
    await store.service.create_session(app_name=APP, user_id="u", session_id="s")
    message = types.Content(role="user", parts=[types.Part(text="pay")])
    paused = [e async for e in runner.run_async(user_id="u", session_id="s", new_message=message)]
    call = paused[1].get_function_calls()[0]
    invocation_id = paused[0].invocation_id

    # Another process (a second service on the same data) resumes the invocation.
    second = Runner(app=app, session_service=store.replica())
    reply = types.FunctionResponse(id=call.id, name=call.name, response={"status": "ok"})
    answer = types.Content(role="user", parts=[types.Part(function_response=reply)])
    resumed = [
        e
        async for e in second.run_async(
            user_id="u", session_id="s", new_message=answer, invocation_id=invocation_id
        )
    ]
    assert [
        (e.author, e.text() or e.actions.agent_state or e.actions.end_of_agent) for e in resumed
    ] == [
        ("payer", "paid"),
        ("payer", True),
        ("flow", {"current_sub_agent": "notifier"}),
        ("notifier", "notified"),
        ("notifier", True),
        ("flow", True),
    ]
    session = await store.replica().get_session(app_name=APP, user_id="u", session_id="s")
    assert session is not None
    checkpoints = [e.actions.agent_state for e in session.events if e.actions.agent_state]
    assert checkpoints == [{"current_sub_agent": "payer"}, {"current_sub_agent": "notifier"}]
    assert sum(1 for e in session.events if e.actions.end_of_agent) == 3
