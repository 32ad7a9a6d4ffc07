"""Workflow agents in a resumable app: checkpoint events, pausing, and resuming."""

from __future__ import annotations

from typing import Any

from google.genai import types

from app.agents import Agent, BaseAgent, LoopAgent, ParallelAgent, SequentialAgent
from app.apps import App, ResumabilityConfig
from app.events import Event
from app.runners import InMemoryRunner
from app.testing import ScriptedModel, function_call
from app.tools import LongRunningFunctionTool, ToolContext

APP = "resumable"


def approve(amount: int) -> dict[str, Any]:
    """Ask a human to approve a payment."""
    return {"status": "pending"}


def finish(tool_context: ToolContext) -> dict[str, Any]:
    """Leave the loop."""
    tool_context.actions.escalate = True
    return {"done": True}


def llm(name: str, *responses: Any, tools: list[Any] | None = None) -> Agent:
    return Agent(name=name, model=ScriptedModel(responses=list(responses)), tools=tools or [])


async def start(root: BaseAgent, resumable: bool = True) -> InMemoryRunner:
    config = ResumabilityConfig(is_resumable=resumable)
    runner = InMemoryRunner(app=App(name=APP, root_agent=root, resumability_config=config))
    await runner.session_service.create_session(app_name=APP, user_id="u", session_id="s")
    return runner


async def run(runner: InMemoryRunner, message: types.Content | str, **kwargs: Any) -> list[Event]:
    if isinstance(message, str):
        message = types.Content(role="user", parts=[types.Part(text=message)])
    return [
        e
        async for e in runner.run_async(user_id="u", session_id="s", new_message=message, **kwargs)
    ]


def shape(events: list[Event]) -> list[tuple[str, Any]]:
    """(author, what) per event: its text, its checkpoint, or `end`."""
    out: list[tuple[str, Any]] = []
    for e in events:
        if e.actions.end_of_agent:
            out.append((e.author, "end"))
        elif e.actions.agent_state is not None:
            out.append((e.author, e.actions.agent_state))
        elif e.get_function_calls():
            out.append((e.author, "call:" + str(e.get_function_calls()[0].name)))
        elif e.get_function_responses():
            out.append((e.author, "response"))
        else:
            out.append((e.author, e.text()))
    return out


def answer(call_event: Event, response: dict[str, Any]) -> types.Content:
    call = call_event.get_function_calls()[0]
    reply = types.FunctionResponse(id=call.id, name=call.name, response=response)
    return types.Content(role="user", parts=[types.Part(function_response=reply)])


async def test_sequential_checkpoints_before_each_sub_agent_and_ends() -> None:
    root = SequentialAgent(name="seq", sub_agents=[llm("a", "from a"), llm("b", "from b")])
    events = await run(await start(root), "go")
    assert shape(events) == [
        ("seq", {"current_sub_agent": "a"}),
        ("a", "from a"),
        ("a", "end"),
        ("seq", {"current_sub_agent": "b"}),
        ("b", "from b"),
        ("b", "end"),
        ("seq", "end"),
    ]
    assert all(e.content is None for e in events if e.author == "seq")


async def test_not_resumable_emits_no_checkpoints() -> None:
    root = SequentialAgent(name="seq", sub_agents=[llm("a", "from a"), llm("b", "from b")])
    events = await run(await start(root, resumable=False), "go")
    assert shape(events) == [("a", "from a"), ("b", "from b")]


async def test_loop_checkpoints_carry_the_round() -> None:
    body = llm("body", "one", function_call("finish"), "two", tools=[finish])
    root = LoopAgent(name="loop", sub_agents=[body], max_iterations=5)
    events = await run(await start(root), "go")
    assert shape(events) == [
        ("loop", {"current_sub_agent": "body", "times_looped": 0}),
        ("body", "one"),
        ("body", "end"),
        ("loop", {"current_sub_agent": "body", "times_looped": 1}),
        ("body", "call:finish"),
        ("body", "response"),
        ("body", "two"),
        ("body", "end"),
        ("loop", "end"),
    ]


async def test_loop_stops_at_max_iterations_with_an_end() -> None:
    root = LoopAgent(name="loop", sub_agents=[llm("body", "x", "y")], max_iterations=2)
    events = await run(await start(root), "go")
    rounds = [e.actions.agent_state["times_looped"] for e in events if e.actions.agent_state]
    assert rounds == [0, 1] and shape(events)[-1] == ("loop", "end")


async def test_parallel_checkpoints_once_and_ends_after_every_branch() -> None:
    root = ParallelAgent(name="par", sub_agents=[llm("a", "from a"), llm("b", "from b")])
    events = await run(await start(root), "go")
    assert shape(events)[0] == ("par", {})
    assert shape(events)[-1] == ("par", "end")
    assert sorted(shape(events)[1:-1]) == [
        ("a", "end"),
        ("a", "from a"),
        ("b", "end"),
        ("b", "from b"),
    ]


async def test_sequential_pauses_on_a_long_running_tool_and_resumes_where_it_stopped() -> None:
    first = llm("first", "planned")
    payer = llm(
        "payer",
        function_call("approve", {"amount": 5}),
        "paid",
        tools=[LongRunningFunctionTool(approve)],
    )
    last = llm("last", "receipt sent")
    root = SequentialAgent(name="seq", sub_agents=[first, payer, last])
    runner = await start(root)
    paused = await run(runner, "pay 5")
    assert shape(paused) == [
        ("seq", {"current_sub_agent": "first"}),
        ("first", "planned"),
        ("first", "end"),
        ("seq", {"current_sub_agent": "payer"}),
        ("payer", "call:approve"),
        ("payer", "response"),
    ]
    invocation_id = paused[0].invocation_id
    call_event = paused[4]

    resumed = await run(
        runner, answer(call_event, {"status": "approved"}), invocation_id=invocation_id
    )
    assert shape(resumed) == [
        ("payer", "paid"),
        ("payer", "end"),
        ("seq", {"current_sub_agent": "last"}),
        ("last", "receipt sent"),
        ("last", "end"),
        ("seq", "end"),
    ]
    assert {e.invocation_id for e in resumed} == {invocation_id}
    assert first.model.calls == 1  # type: ignore[union-attr]

    # Resuming a finished invocation runs nothing.
    assert await run(runner, "again?", invocation_id=invocation_id) == []


async def test_loop_resumes_in_the_round_it_paused() -> None:
    body = llm(
        "body",
        "round zero",
        function_call("approve", {"amount": 1}),
        function_call("finish"),
        "stopped",
        tools=[LongRunningFunctionTool(approve), finish],
    )
    root = LoopAgent(name="loop", sub_agents=[body], max_iterations=3)
    runner = await start(root)
    paused = await run(runner, "go")
    assert shape(paused)[-3:] == [
        ("loop", {"current_sub_agent": "body", "times_looped": 1}),
        ("body", "call:approve"),
        ("body", "response"),
    ]
    call_event = paused[-2]
    resumed = await run(
        runner, answer(call_event, {"ok": True}), invocation_id=paused[0].invocation_id
    )
    assert shape(resumed) == [
        ("body", "call:finish"),
        ("body", "response"),
        ("body", "stopped"),
        ("body", "end"),
        ("loop", "end"),
    ]


async def test_parallel_resumes_only_the_unfinished_branch() -> None:
    quick = llm("quick", "quick done")
    waiting = llm(
        "waiting",
        function_call("approve", {"amount": 2}),
        "approved",
        tools=[LongRunningFunctionTool(approve)],
    )
    root = ParallelAgent(name="par", sub_agents=[quick, waiting])
    runner = await start(root)
    paused = await run(runner, "go")
    assert ("quick", "end") in shape(paused) and ("par", "end") not in shape(paused)
    call_event = next(e for e in paused if e.get_function_calls())
    resumed = await run(
        runner, answer(call_event, {"status": "ok"}), invocation_id=paused[0].invocation_id
    )
    assert shape(resumed) == [("waiting", "approved"), ("waiting", "end"), ("par", "end")]
    assert quick.model.calls == 1  # type: ignore[union-attr]
    assert resumed[0].branch == "par.waiting"


async def test_resume_without_a_user_message_for_the_invocation_is_refused() -> None:
    import pytest

    root = SequentialAgent(name="seq", sub_agents=[llm("a", "x")])
    runner = await start(root)
    with pytest.raises(ValueError, match="No user message available for resuming invocation"):
        async for _ in runner.run_async(user_id="u", session_id="s", invocation_id="e-unknown"):
            pass
