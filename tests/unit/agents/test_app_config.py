"""App settings from the reference runtime: what is accepted, carried, or refused."""

from __future__ import annotations

import pytest
from google.genai import types

from app.agents import Agent
from app.agents.context_cache_config import ContextCacheConfig
from app.apps import App, EventsCompactionConfig
from app.runners import InMemoryRunner
from app.testing import ScriptedModel


async def test_context_cache_config_reaches_every_invocation() -> None:
    config = ContextCacheConfig(cache_intervals=5, ttl_seconds=600, min_tokens=4096)
    seen: list[ContextCacheConfig | None] = []

    def before(callback_context, llm_request):  # type: ignore[no-untyped-def]
        seen.append(callback_context._invocation_context.context_cache_config)

    agent = Agent(name="a", model=ScriptedModel(responses=["ok"]), before_model_callback=before)
    runner = InMemoryRunner(app=App(name="cached", root_agent=agent, context_cache_config=config))
    assert runner.context_cache_config is config
    session = await runner.session_service.create_session(app_name="cached", user_id="u")
    message = types.Content(role="user", parts=[types.Part(text="hi")])
    async for _ in runner.run_async(user_id="u", session_id=session.id, new_message=message):
        pass
    assert seen == [config]
    assert config.ttl_string == "600s"


def test_context_cache_config_validates_like_the_reference() -> None:
    with pytest.raises(ValueError, match="cache_intervals"):
        ContextCacheConfig(cache_intervals=0)
    with pytest.raises(ValueError, match="ttl_seconds"):
        ContextCacheConfig(ttl_seconds=0)


def test_events_compaction_is_refused_not_ignored() -> None:
    with pytest.raises(ValueError, match="events_compaction_config is not supported"):
        App(
            name="compacting",
            root_agent=Agent(name="a"),
            events_compaction_config=EventsCompactionConfig(compaction_interval=3, overlap_size=1),
        )


def test_parent_agent_is_assignable_and_checked() -> None:
    child, other = Agent(name="child"), Agent(name="other")
    child.parent_agent = other
    assert child.parent_agent is other and child.root_agent is other
    child.parent_agent = None
    assert child.root_agent is child
    with pytest.raises(TypeError, match="parent_agent"):
        child.parent_agent = "other"  # type: ignore[assignment]
    Agent(name="p1", sub_agents=[child])
    with pytest.raises(ValueError, match="already has parent"):
        Agent(name="p2", sub_agents=[child])
