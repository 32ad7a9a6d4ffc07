"""The reference runtime's module paths resolve to the same objects here."""

from __future__ import annotations

from typing import Any

from google.genai import types

from app.agents import Agent, InvocationContext
from app.events import Event, LlmResponse
from app.sessions import InMemorySessionService


def test_reference_paths_name_the_same_classes() -> None:
    from app.agents.context_cache_config import ContextCacheConfig
    from app.apps.app import App, ResumabilityConfig
    from app.models.cache_metadata import CacheMetadata
    from app.models.llm_response import LlmResponse as ModelsLlmResponse
    from app.utils.context_utils import Aclosing

    assert ModelsLlmResponse is LlmResponse
    assert CacheMetadata.__name__ == "CacheMetadata" and ContextCacheConfig().ttl_string == "1800s"
    assert App.model_fields["resumability_config"].annotation == ResumabilityConfig | None
    assert Aclosing.__name__ == "aclosing"


def test_reference_error_modules_name_our_errors() -> None:
    import app.errors
    from app.errors.already_exists_error import AlreadyExistsError
    from app.errors.not_found_error import NotFoundError
    from app.errors.session_not_found_error import SessionNotFoundError

    assert AlreadyExistsError is app.errors.AlreadyExistsError
    assert NotFoundError is app.errors.NotFoundError
    assert issubclass(SessionNotFoundError, NotFoundError)


def add(a: int, b: int) -> dict[str, Any]:
    """Add two numbers."""
    return {"sum": a + b}


async def test_handle_function_calls_async_runs_only_the_filtered_calls() -> None:
    from app.flows.llm_flows.functions import handle_function_calls_async
    from app.tools import FunctionTool

    service = InMemorySessionService()
    session = await service.create_session(app_name="app", user_id="u")
    agent = Agent(name="a", tools=[add])
    ctx = InvocationContext(
        invocation_id="inv", agent=agent, session=session, session_service=service
    )
    calls = [
        types.Part(function_call=types.FunctionCall(id=f"c{i}", name="add", args={"a": i, "b": 1}))
        for i in range(3)
    ]
    event = Event(author="a", content=types.Content(role="model", parts=calls))
    tools = {"add": FunctionTool(add)}

    everything = await handle_function_calls_async(ctx, event, tools)
    assert everything is not None
    assert [r.response for r in everything.get_function_responses()] == [
        {"sum": 1},
        {"sum": 2},
        {"sum": 3},
    ]
    some = await handle_function_calls_async(ctx, event, tools, filters={"c2"})
    assert some is not None
    assert [(r.id, r.response) for r in some.get_function_responses()] == [("c2", {"sum": 3})]
    assert await handle_function_calls_async(ctx, event, tools, filters=set()) is None
