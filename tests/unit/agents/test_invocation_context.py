"""InvocationContext built and used as code written for the reference runtime does."""

from __future__ import annotations

from google.genai import types

from app.agents import Agent, InvocationContext, SequentialAgent
from app.agents.base_agent import BaseAgentState
from app.agents.loop_agent import LoopAgentState
from app.apps import ResumabilityConfig
from app.events import Event, EventActions
from app.plugins import PluginManager
from app.sessions import InMemorySessionService, Session


def make_context(
    session: Session, service: InMemorySessionService, resumable: bool | None = True
) -> InvocationContext:
    config = None if resumable is None else ResumabilityConfig(is_resumable=resumable)
    root = SequentialAgent(name="root", sub_agents=[Agent(name="a"), Agent(name="b")])
    return InvocationContext(
        invocation_id="inv-1",
        agent=root,
        session=session,
        session_service=service,
        resumability_config=config,
    )


async def new_session() -> tuple[Session, InMemorySessionService]:
    service = InMemorySessionService()
    return await service.create_session(app_name="app", user_id="u"), service


async def test_built_from_keywords_with_an_empty_plugin_manager() -> None:
    session, service = await new_session()
    ctx = make_context(session, service)
    assert isinstance(ctx.plugin_manager, PluginManager) and ctx.plugin_manager.plugins == []
    assert ctx.app_name == "app" and ctx.user_id == "u"
    assert ctx.agent_states == {} and ctx.end_of_agents == {}
    assert ctx.run_config is not None and ctx.run_config.max_llm_calls == 500


async def test_is_resumable_follows_the_config() -> None:
    session, service = await new_session()
    assert make_context(session, service, True).is_resumable
    assert not make_context(session, service, False).is_resumable
    assert not make_context(session, service, None).is_resumable


async def test_set_agent_state_records_a_checkpoint_an_end_or_neither() -> None:
    session, service = await new_session()
    ctx = make_context(session, service)
    ctx.set_agent_state("loop", agent_state=LoopAgentState(current_sub_agent="a", times_looped=2))
    assert ctx.agent_states["loop"] == {"current_sub_agent": "a", "times_looped": 2}
    assert ctx.end_of_agents["loop"] is False
    ctx.set_agent_state("loop", end_of_agent=True)
    assert "loop" not in ctx.agent_states and ctx.end_of_agents["loop"] is True
    # end_of_agent wins over a state given with it.
    ctx.set_agent_state("x", agent_state=BaseAgentState(), end_of_agent=True)
    assert ctx.end_of_agents["x"] is True and "x" not in ctx.agent_states
    ctx.set_agent_state("loop")
    assert "loop" not in ctx.agent_states and "loop" not in ctx.end_of_agents


async def test_copies_share_checkpoints_but_not_the_agent() -> None:
    session, service = await new_session()
    ctx = make_context(session, service)
    child = ctx.agent.sub_agents[0]
    copy = ctx.for_agent(child)
    copy.set_agent_state("a", end_of_agent=True)
    assert ctx.end_of_agents == {"a": True}
    assert copy.agent is child and ctx.agent.name == "root"


async def test_reset_sub_agent_states_clears_every_descendant() -> None:
    session, service = await new_session()
    ctx = make_context(session, service)
    for name in ("a", "b", "root"):
        ctx.set_agent_state(name, end_of_agent=True)
    ctx.reset_sub_agent_states("root")
    assert ctx.end_of_agents == {"root": True}


def event(author: str, invocation_id: str = "inv-1", text: str | None = None, **actions) -> Event:  # type: ignore[no-untyped-def]
    content = types.Content(role="model", parts=[types.Part(text=text)]) if text else None
    return Event(
        author=author, invocation_id=invocation_id, content=content, actions=EventActions(**actions)
    )


async def test_populate_rebuilds_checkpoints_from_this_invocations_events() -> None:
    session, service = await new_session()
    for e in [
        event("root", agent_state={"current_sub_agent": "a"}),
        event("a", text="did a"),
        event("a", end_of_agent=True),
        event("root", agent_state={"current_sub_agent": "b"}),
        event("b", text="working"),
        event("user", text="hello"),
        event("other", invocation_id="inv-0", text="older invocation"),
    ]:
        await service.append_event(session, e)
    ctx = make_context(session, service)
    ctx.populate_invocation_agent_states()
    assert ctx.agent_states == {"root": {"current_sub_agent": "b"}, "b": {}}
    assert ctx.end_of_agents == {"root": False, "a": True, "b": False}

    not_resumable = make_context(session, service, False)
    not_resumable.populate_invocation_agent_states()
    assert not_resumable.agent_states == {} and not_resumable.end_of_agents == {}


async def test_should_pause_only_on_a_long_running_call_of_a_resumable_invocation() -> None:
    session, service = await new_session()
    call = types.Part(function_call=types.FunctionCall(id="c1", name="approve", args={}))
    paused = Event(
        author="a", content=types.Content(role="model", parts=[call]), long_running_tool_ids={"c1"}
    )
    ctx = make_context(session, service)
    assert ctx.should_pause_invocation(paused)
    assert not ctx.should_pause_invocation(
        paused.model_copy(update={"long_running_tool_ids": None})
    )
    other = paused.model_copy(update={"long_running_tool_ids": {"elsewhere"}})
    assert not ctx.should_pause_invocation(other)
    assert not ctx.should_pause_invocation(event("a", text="no calls"))
    assert not make_context(session, service, False).should_pause_invocation(paused)
