"""Agent trees: validation, transfer between agents, and the workflow agents."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from google.genai import types

from app.agents import Agent, BaseAgent, LoopAgent, ParallelAgent, SequentialAgent
from app.agents.invocation_context import InvocationContext
from app.events import Event, EventActions
from app.runners import InMemoryRunner
from app.testing import ScriptedModel, function_call
from app.tools import ToolContext

APP = "agents_app"


def user(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=text)])


async def run(runner: InMemoryRunner, text: str, session_id: str = "s") -> list[Event]:
    if (
        await runner.session_service.get_session(app_name=APP, user_id="u", session_id=session_id)
        is None
    ):
        await runner.session_service.create_session(
            app_name=APP, user_id="u", session_id=session_id
        )
    return [
        e
        async for e in runner.run_async(user_id="u", session_id=session_id, new_message=user(text))
    ]


def test_agent_name_must_be_an_identifier_and_not_user() -> None:
    with pytest.raises(ValueError, match="identifier"):
        Agent(name="bad-name")
    with pytest.raises(ValueError, match="reserved"):
        Agent(name="user")


def test_sub_agents_get_their_parent_and_can_be_found() -> None:
    leaf = Agent(name="leaf")
    mid = SequentialAgent(name="mid", sub_agents=[leaf])
    root = Agent(name="root", sub_agents=[mid])
    assert leaf.parent_agent is mid and mid.parent_agent is root
    assert leaf.root_agent is root
    assert root.find_agent("leaf") is leaf and root.find_agent("root") is root
    assert root.find_agent("missing") is None


def test_an_agent_cannot_have_two_parents() -> None:
    child = Agent(name="child")
    Agent(name="one", sub_agents=[child])
    with pytest.raises(ValueError, match="already has parent"):
        Agent(name="two", sub_agents=[child])


def test_model_is_inherited_from_ancestor() -> None:
    model = ScriptedModel(responses=[])
    child = Agent(name="child")
    Agent(name="root", model=model, sub_agents=[child])
    assert child.canonical_model is model


async def test_transfer_to_sub_agent_and_next_turn_goes_to_it() -> None:
    root_model = ScriptedModel(
        responses=[function_call("transfer_to_agent", {"agent_name": "billing"})]
    )
    billing_model = ScriptedModel(responses=["Your bill is 10 EUR.", "Paid."])
    billing = Agent(name="billing", description="Bills and payments", model=billing_model)
    root = Agent(name="coordinator", model=root_model, sub_agents=[billing])
    runner = InMemoryRunner(root, app_name=APP)
    events = await run(runner, "how much do I owe?")
    assert [e.author for e in events] == ["coordinator", "coordinator", "billing"]
    assert events[1].actions.transfer_to_agent == "billing"
    assert events[-1].text() == "Your bill is 10 EUR."
    # The coordinator was offered the transfer tool and told about billing.
    request = root_model.requests[0]
    names = [d.name for d in request.config.tools[0].function_declarations]
    assert "transfer_to_agent" in names
    assert "billing: Bills and payments" in request.system_instruction_text()
    # The specialist sees the coordinator's call only as context, never as its own call.
    seen = billing_model.requests[0].contents
    assert all(not p.function_call for c in seen for p in c.parts or [])
    assert any("For context:" in (p.text or "") for c in seen for p in c.parts or [])
    # The next turn goes straight to the agent that spoke last.
    follow_up = await run(runner, "pay it")
    assert [e.author for e in follow_up] == ["billing"] and root_model.calls == 1


async def test_disallow_transfer_to_parent_returns_next_turn_to_root() -> None:
    root_model = ScriptedModel(
        responses=[function_call("transfer_to_agent", {"agent_name": "child"}), "root again"]
    )
    child = Agent(
        name="child",
        model=ScriptedModel(responses=["child answer"]),
        disallow_transfer_to_parent=True,
        disallow_transfer_to_peers=True,
    )
    runner = InMemoryRunner(Agent(name="root", model=root_model, sub_agents=[child]), app_name=APP)
    await run(runner, "first")
    second = await run(runner, "second")
    assert [e.author for e in second] == ["root"]
    # The child was not offered a transfer tool at all.
    assert not child.canonical_model.requests[0].config.tools  # type: ignore[attr-defined]


async def test_peer_transfer_is_offered_unless_disallowed() -> None:
    a_model = ScriptedModel(responses=[function_call("transfer_to_agent", {"agent_name": "b"})])
    a = Agent(name="a", description="A", model=a_model)
    b = Agent(name="b", description="B", model=ScriptedModel(responses=["from b"]))
    root = Agent(
        name="root",
        model=ScriptedModel(responses=[function_call("transfer_to_agent", {"agent_name": "a"})]),
        sub_agents=[a, b],
    )
    runner = InMemoryRunner(root, app_name=APP)
    events = await run(runner, "go")
    assert events[-1].author == "b" and events[-1].text() == "from b"
    enum = a_model.requests[0].config.tools[0].function_declarations[0].parameters_json_schema
    assert set(enum["properties"]["agent_name"]["enum"]) == {"root", "b"}


async def test_transfer_to_unknown_agent_is_an_error_response() -> None:
    root_model = ScriptedModel(
        responses=[function_call("transfer_to_agent", {"agent_name": "ghost"}), "sorry"]
    )
    runner = InMemoryRunner(
        Agent(name="root", model=root_model, sub_agents=[Agent(name="real")]), app_name=APP
    )
    events = await run(runner, "go")
    assert "ghost" in events[1].get_function_responses()[0].response["error"]
    assert events[-1].text() == "sorry"


async def test_sequential_agent_runs_children_in_order_sharing_state() -> None:
    writer = Agent(name="writer", model=ScriptedModel(responses=["draft"]), output_key="draft")
    reviewer_model = ScriptedModel(responses=["looks good"])
    reviewer = Agent(name="reviewer", model=reviewer_model, instruction="Review: {draft}")
    runner = InMemoryRunner(
        SequentialAgent(name="pipeline", sub_agents=[writer, reviewer]), app_name=APP
    )
    events = await run(runner, "write")
    assert [(e.author, e.text()) for e in events] == [
        ("writer", "draft"),
        ("reviewer", "looks good"),
    ]
    assert "Review: draft" in reviewer_model.requests[0].system_instruction_text()


async def test_parallel_agent_runs_branches_concurrently_and_isolated() -> None:
    gate = asyncio.Event()
    arrived = 0

    async def rendezvous(llm_request: Any) -> str:
        nonlocal arrived
        arrived += 1
        if arrived == 2:
            gate.set()
        await asyncio.wait_for(gate.wait(), 2)
        return "done"

    left_model = ScriptedModel(responses=[rendezvous, "left second"])
    right_model = ScriptedModel(responses=[rendezvous, "right second"])
    left = Agent(name="left", model=left_model)
    right = Agent(name="right", model=right_model)
    runner = InMemoryRunner(ParallelAgent(name="fan", sub_agents=[left, right]), app_name=APP)
    events = await run(runner, "go")
    assert sorted(e.author for e in events) == ["left", "right"]
    assert {e.branch for e in events} == {"fan.left", "fan.right"}
    session = await runner.session_service.get_session(app_name=APP, user_id="u", session_id="s")
    assert session is not None and [e.seq for e in session.events] == [1, 2, 3]

    # A second turn: each branch sees the user's messages and its own reply, not the sibling's.
    await run(runner, "again")
    contents = left_model.requests[1].contents
    texts = [p.text for c in contents for p in c.parts or []]
    assert "go" in texts and "again" in texts and "done" in texts
    assert len([t for t in texts if t == "done"]) == 1


async def test_parallel_agent_failure_in_one_branch_cancels_the_other() -> None:
    cancelled = asyncio.Event()

    async def hang(llm_request: Any) -> str:
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "late"

    ok = Agent(name="ok", model=ScriptedModel(responses=[hang]))
    bad = Agent(name="bad", model=ScriptedModel(responses=[RuntimeError("branch failed")]))
    runner = InMemoryRunner(ParallelAgent(name="fan", sub_agents=[ok, bad]), app_name=APP)
    with pytest.raises(RuntimeError, match="branch failed"):
        await run(runner, "go")
    await asyncio.wait_for(cancelled.wait(), 2)


async def test_loop_agent_stops_on_escalate() -> None:
    rounds = 0

    def check(tool_context: ToolContext) -> str:
        """Stop the loop on the third round."""
        nonlocal rounds
        rounds += 1
        if rounds == 3:
            tool_context.actions.escalate = True
        return f"round {rounds}"

    model = ScriptedModel(responses=[function_call("check"), "next"] * 3)
    worker = Agent(name="worker", model=model, tools=[check])
    runner = InMemoryRunner(
        LoopAgent(name="loop", sub_agents=[worker], max_iterations=10), app_name=APP
    )
    events = await run(runner, "go")
    assert rounds == 3
    assert any(e.actions.escalate for e in events)


async def test_loop_agent_respects_max_iterations() -> None:
    model = ScriptedModel(responses=["again"] * 5)
    runner = InMemoryRunner(
        LoopAgent(name="loop", sub_agents=[Agent(name="w", model=model)], max_iterations=3),
        app_name=APP,
    )
    events = await run(runner, "go")
    assert [e.text() for e in events] == ["again"] * 3


async def test_custom_base_agent_subclass_runs() -> None:
    class Echo(BaseAgent):
        async def _run_async_impl(self, ctx: InvocationContext):  # type: ignore[override]
            text = ctx.user_content.parts[0].text if ctx.user_content else ""
            yield Event(
                invocation_id=ctx.invocation_id,
                author=self.name,
                content=types.Content(role="model", parts=[types.Part(text=f"echo: {text}")]),
                actions=EventActions(state_delta={"echoed": True}),
            )

    runner = InMemoryRunner(Echo(name="echo"), app_name=APP)
    events = await run(runner, "ping")
    assert events[0].text() == "echo: ping"
    session = await runner.session_service.get_session(app_name=APP, user_id="u", session_id="s")
    assert session is not None and session.state == {"echoed": True}
