"""Runner behaviour through the public API, with a scripted model and in-memory services."""

from __future__ import annotations

import asyncio
import signal
import threading
from typing import Any

import pytest
from google.genai import types

from app.agents import Agent, CallbackContext, RunConfig, StreamingMode
from app.apps import App, ResumabilityConfig
from app.errors import LlmCallsLimitExceededError, SessionNotFoundError
from app.events import Event, LlmResponse
from app.plugins import BasePlugin
from app.runners import InMemoryRunner, Runner
from app.sessions import InMemorySessionService
from app.testing import ScriptedModel, function_call
from app.tools import LongRunningFunctionTool, ToolContext

APP = "test_app"


def user(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=text)])


async def new_runner(agent: Agent, **kwargs: Any) -> InMemoryRunner:
    runner = InMemoryRunner(agent, app_name=APP, **kwargs)
    await runner.session_service.create_session(app_name=APP, user_id="u", session_id="s")
    return runner


async def collect(runner: Runner, text: str | None = "hi", **kwargs: Any) -> list[Event]:
    message = user(text) if text is not None else None
    return [
        e
        async for e in runner.run_async(user_id="u", session_id="s", new_message=message, **kwargs)
    ]


async def stored(runner: Runner) -> list[Event]:
    session = await runner.session_service.get_session(app_name=APP, user_id="u", session_id="s")
    assert session is not None
    return session.events


def get_weather(city: str) -> dict[str, Any]:
    """Return the weather for a city."""
    return {"city": city, "celsius": 21}


# Construction


def test_runner_requires_exactly_one_of_app_and_agent() -> None:
    # The reference runtime's messages, word for word.
    agent = Agent(name="a", model=ScriptedModel())
    service = InMemorySessionService()
    with pytest.raises(ValueError) as info:
        Runner(app=App(name="x", root_agent=agent), agent=agent, session_service=service)
    assert str(info.value) == (
        "Only one of app, agent, or node may be provided, but got: app=App, agent=LlmAgent. "
        "Pass exactly one to Runner()."
    )
    with pytest.raises(ValueError) as info:
        Runner(app_name="x", session_service=service)
    assert str(info.value) == (
        "One of app, agent, or node must be provided. Got none. Pass exactly one to Runner()."
    )
    with pytest.raises(ValueError) as info:
        Runner(agent=agent, session_service=service)
    assert str(info.value) == "app_name is required when agent is provided without app."


def test_plugins_with_app_are_rejected() -> None:
    app = App(name="x", root_agent=Agent(name="a", model=ScriptedModel()))
    with pytest.raises(ValueError) as info:
        Runner(app=app, plugins=[BasePlugin("p")], session_service=InMemorySessionService())
    assert str(info.value) == (
        "When app is provided, plugins should not be provided and should be provided in the "
        "app instead."
    )


def test_app_name_overrides_the_apps_name_and_close_timeout_reaches_plugins() -> None:
    app = App(name="x", root_agent=Agent(name="a", model=ScriptedModel()))
    runner = Runner(
        app=app,
        app_name="renamed",
        session_service=InMemorySessionService(),
        plugin_close_timeout=2,
    )
    assert runner.app_name == "renamed" and runner.app is app
    assert runner.plugin_manager.close_timeout == 2


def test_in_memory_runner_defaults() -> None:
    runner = InMemoryRunner(Agent(name="a", model=ScriptedModel()))
    assert runner.app_name == "InMemoryRunner"
    assert runner.artifact_service is not None and runner.memory_service is not None
    app = App(name="my_app", root_agent=Agent(name="b", model=ScriptedModel()))
    assert InMemoryRunner(app=app).app_name == "my_app"


# Basic runs


async def test_chat_turn_stores_user_and_reply_with_dense_seq() -> None:
    runner = await new_runner(Agent(name="assistant", model=ScriptedModel(responses=["hello"])))
    events = await collect(runner, "hi")
    assert [e.text() for e in events] == ["hello"]
    assert events[0].author == "assistant" and events[0].invocation_id.startswith("e-")
    history = await stored(runner)
    assert [(e.seq, e.author, e.text()) for e in history] == [
        (1, "user", "hi"),
        (2, "assistant", "hello"),
    ]
    assert history[0].invocation_id == history[1].invocation_id


async def test_missing_session_raises_session_not_found() -> None:
    runner = InMemoryRunner(Agent(name="a", model=ScriptedModel(responses=["x"])), app_name=APP)
    with pytest.raises(SessionNotFoundError, match="Session not found: nope") as info:
        await anext(runner.run_async(user_id="u", session_id="nope", new_message=user("hi")))
    assert isinstance(info.value, ValueError)


async def test_auto_create_session_creates_missing_session() -> None:
    service = InMemorySessionService()
    runner = Runner(
        app_name=APP,
        agent=Agent(name="a", model=ScriptedModel(responses=["x"])),
        session_service=service,
        auto_create_session=True,
    )
    events = [
        e async for e in runner.run_async(user_id="u", session_id="new", new_message=user("hi"))
    ]
    assert events[-1].text() == "x"
    assert await service.get_session(app_name=APP, user_id="u", session_id="new") is not None


async def test_user_message_with_function_call_is_rejected() -> None:
    runner = await new_runner(Agent(name="a", model=ScriptedModel(responses=["x"])))
    bad = types.Content(role="user", parts=[function_call("get_weather", {"city": "x"})])
    with pytest.raises(ValueError, match="function calls"):
        await anext(runner.run_async(user_id="u", session_id="s", new_message=bad))


async def test_non_user_role_message_is_stored_as_user() -> None:
    runner = await new_runner(Agent(name="a", model=ScriptedModel(responses=["x"])))
    message = types.Content(role="model", parts=[types.Part(text="pretend")])
    [e async for e in runner.run_async(user_id="u", session_id="s", new_message=message)]
    first = (await stored(runner))[0]
    assert first.author == "user" and first.content is not None and first.content.role == "user"


async def test_retry_with_same_invocation_id_does_not_store_message_twice() -> None:
    model = ScriptedModel(responses=["one", "two"])
    runner = await new_runner(Agent(name="a", model=model))
    await collect(runner, "hi", invocation_id="e-fixed")
    await collect(runner, "hi", invocation_id="e-fixed")
    assert [e.author for e in await stored(runner)] == ["user", "a", "a"]


async def test_state_delta_only_run_is_stored_and_agent_runs() -> None:
    model = ScriptedModel(responses=["ok"])
    runner = await new_runner(Agent(name="a", model=model, instruction="mood={mood}"))
    await collect(runner, None, state_delta={"mood": "happy"})
    assert "mood=happy" in model.requests[0].system_instruction_text()
    assert (await stored(runner))[0].actions.state_delta == {"mood": "happy"}


async def test_on_user_event_reports_the_stored_user_event_before_a_failing_model() -> None:
    runner = await new_runner(Agent(name="a", model=ScriptedModel(responses=[RuntimeError("x")])))
    reported: list[Event] = []
    with pytest.raises(RuntimeError):
        await collect(runner, "hi", on_user_event=reported.append)
    [user_event] = await stored(runner)
    assert [e.id for e in reported] == [user_event.id]
    assert reported[0].seq == user_event.seq == 1


async def test_on_user_event_reports_an_already_stored_message_and_not_a_bare_run() -> None:
    runner = await new_runner(Agent(name="a", model=ScriptedModel(responses=["1", "2", "3"])))
    reported: list[Event] = []
    await collect(runner, "hi", invocation_id="e-fixed")
    await collect(runner, "hi", invocation_id="e-fixed", on_user_event=reported.append)
    assert [e.id for e in reported] == [(await stored(runner))[0].id]
    await collect(runner, None, on_user_event=reported.append)  # nothing to store
    assert len(reported) == 1
    with pytest.raises(SessionNotFoundError):
        async for _ in runner.run_async(
            user_id="u", session_id="gone", new_message=user("hi"), on_user_event=reported.append
        ):
            pass
    assert len(reported) == 1


# Tools


async def test_tool_turn_runs_function_and_feeds_result_back() -> None:
    model = ScriptedModel(responses=[function_call("get_weather", {"city": "Paris"}), "Sunny."])
    runner = await new_runner(Agent(name="a", model=model, tools=[get_weather]))
    events = await collect(runner, "weather?")
    assert [bool(e.get_function_calls()) for e in events] == [True, False, False]
    call = events[0].get_function_calls()[0]
    response = events[1].get_function_responses()[0]
    assert call.id and response.id == call.id
    assert response.response == {"city": "Paris", "celsius": 21}
    assert events[1].author == "a" and events[1].content is not None
    assert events[1].content.role == "user"
    assert events[2].is_final_response() and not events[0].is_final_response()
    # The second model call sees the call and its response.
    second = model.requests[1].contents
    assert second[-1].parts[0].function_response.response == {"city": "Paris", "celsius": 21}
    decl = model.requests[0].config.tools[0].function_declarations[0]
    assert decl.name == "get_weather"


async def test_tool_error_becomes_function_response_and_run_goes_on() -> None:
    def explode(x: int) -> int:
        """Always fails."""
        raise RuntimeError("boom")

    model = ScriptedModel(responses=[function_call("explode", {"x": 1}), "recovered"])
    runner = await new_runner(Agent(name="a", model=model, tools=[explode]))
    events = await collect(runner)
    assert events[1].get_function_responses()[0].response == {"error": "RuntimeError: boom"}
    assert events[-1].text() == "recovered"


async def test_unknown_tool_call_without_error_callback_fails_the_run() -> None:
    # The reference runtime's behaviour (tests/unit/flows/test_unknown_tool.py has the rest).
    model = ScriptedModel(responses=[function_call("nope", {}), "fine"])
    runner = await new_runner(Agent(name="a", model=model, tools=[get_weather]))
    with pytest.raises(ValueError, match="Tool 'nope' not found") as info:
        await collect(runner)
    assert "get_weather" in str(info.value)


async def test_parallel_function_calls_run_concurrently() -> None:
    both_started = asyncio.Event()
    started = 0

    async def slow(tag: str) -> str:
        """Wait until both calls run."""
        nonlocal started
        started += 1
        if started == 2:
            both_started.set()
        await asyncio.wait_for(both_started.wait(), 2)
        return tag

    calls = [function_call("slow", {"tag": "a"}), function_call("slow", {"tag": "b"})]
    model = ScriptedModel(responses=[calls, "done"])
    runner = await new_runner(Agent(name="a", model=model, tools=[slow]))
    events = await collect(runner)
    responses = events[1].get_function_responses()
    assert [r.response for r in responses] == [{"result": "a"}, {"result": "b"}]


async def test_tool_state_changes_are_carried_by_response_event() -> None:
    def remember(value: str, tool_context: ToolContext) -> str:
        """Remember a value."""
        tool_context.state["fact"] = value
        tool_context.state["user:name"] = "Ada"
        return "ok"

    model = ScriptedModel(responses=[function_call("remember", {"value": "v"}), "noted"])
    runner = await new_runner(Agent(name="a", model=model, tools=[remember]))
    events = await collect(runner)
    assert events[1].actions.state_delta == {"fact": "v", "user:name": "Ada"}
    session = await runner.session_service.get_session(app_name=APP, user_id="u", session_id="s")
    assert session is not None and session.state["fact"] == "v"


async def test_tool_saves_artifact_recorded_in_artifact_delta() -> None:
    async def make_report(tool_context: ToolContext) -> str:
        """Write a report."""
        version = await tool_context.save_artifact("report.txt", types.Part(text="hello"))
        return f"v{version}"

    model = ScriptedModel(responses=[function_call("make_report"), "saved"])
    runner = await new_runner(Agent(name="a", model=model, tools=[make_report]))
    events = await collect(runner)
    assert events[1].actions.artifact_delta == {"report.txt": 0}
    assert runner.artifact_service is not None
    part = await runner.artifact_service.load_artifact(
        app_name=APP, user_id="u", session_id="s", filename="report.txt"
    )
    assert part is not None and part.text == "hello"


# State prefixes


async def test_state_prefix_scopes_across_users_and_sessions() -> None:
    def setter(tool_context: ToolContext) -> str:
        """Set state in every scope."""
        tool_context.state["app:motd"] = "hi all"
        tool_context.state["user:lang"] = "fr"
        tool_context.state["topic"] = "cats"
        tool_context.state["temp:scratch"] = 42
        return "ok"

    seen: dict[str, Any] = {}

    def observe(callback_context: CallbackContext, llm_request: Any) -> None:
        seen.update(callback_context.state.to_dict())

    model = ScriptedModel(responses=[function_call("setter"), "done"])
    agent = Agent(name="a", model=model, tools=[setter], before_model_callback=observe)
    runner = await new_runner(agent)
    events = await collect(runner)
    # temp: is visible during the invocation, but never stored.
    assert seen["temp:scratch"] == 42
    assert "temp:scratch" not in events[1].actions.state_delta
    service = runner.session_service
    same_user = await service.create_session(app_name=APP, user_id="u", session_id="s2")
    other_user = await service.create_session(app_name=APP, user_id="v", session_id="s3")
    assert same_user.state == {"app:motd": "hi all", "user:lang": "fr"}
    assert other_user.state == {"app:motd": "hi all"}
    reloaded = await service.get_session(app_name=APP, user_id="u", session_id="s")
    assert reloaded is not None
    assert reloaded.state == {"app:motd": "hi all", "user:lang": "fr", "topic": "cats"}


async def test_output_key_stores_final_text_in_state() -> None:
    runner = await new_runner(
        Agent(name="a", model=ScriptedModel(responses=["42"]), output_key="answer")
    )
    events = await collect(runner)
    assert events[-1].actions.state_delta == {"answer": "42"}


# Streaming


async def test_sse_streaming_yields_partials_then_aggregate_with_same_id() -> None:
    model = ScriptedModel(responses=["one two three"])
    runner = await new_runner(Agent(name="a", model=model))
    events = await collect(runner, run_config=RunConfig(streaming_mode=StreamingMode.SSE))
    partial = [e for e in events if e.partial]
    final = [e for e in events if not e.partial]
    assert len(partial) == 3 and len(final) == 1
    assert "".join(e.text() for e in partial) == final[0].text() == "one two three"
    assert {e.id for e in events} == {final[0].id}
    assert all(e.seq is None for e in partial)
    # Partial events are never stored.
    assert [e.text() for e in await stored(runner)] == ["hi", "one two three"]


async def test_custom_metadata_is_copied_onto_events() -> None:
    runner = await new_runner(Agent(name="a", model=ScriptedModel(responses=["x"])))
    events = await collect(runner, run_config=RunConfig(custom_metadata={"trace": "t1"}))
    assert events[0].custom_metadata == {"trace": "t1"}
    user, reply = await stored(runner)
    assert user.author == "user"  # the user's event too: it is part of the run
    assert user.custom_metadata == reply.custom_metadata == {"trace": "t1"}


# Limits and errors


async def test_max_llm_calls_limit_raises() -> None:
    model = ScriptedModel(responses=[function_call("get_weather", {"city": "x"})] * 5)
    runner = await new_runner(Agent(name="a", model=model, tools=[get_weather]))
    with pytest.raises(LlmCallsLimitExceededError):
        await collect(runner, run_config=RunConfig(max_llm_calls=2))
    assert model.calls == 2


async def test_max_llm_calls_zero_means_unbounded() -> None:
    model = ScriptedModel(responses=[function_call("get_weather", {"city": "x"})] * 3 + ["end"])
    runner = await new_runner(Agent(name="a", model=model, tools=[get_weather]))
    events = await collect(runner, run_config=RunConfig(max_llm_calls=0))
    assert events[-1].text() == "end"


async def test_model_error_response_is_a_final_event() -> None:
    failure = LlmResponse(error_code="RESOURCE_EXHAUSTED", error_message="quota")
    runner = await new_runner(Agent(name="a", model=ScriptedModel(responses=[failure])))
    events = await collect(runner)
    assert events[-1].error_code == "RESOURCE_EXHAUSTED" and events[-1].is_final_response()


async def test_model_exception_propagates_after_earlier_events() -> None:
    model = ScriptedModel(
        responses=[function_call("get_weather", {"city": "x"}), RuntimeError("down")]
    )
    runner = await new_runner(Agent(name="a", model=model, tools=[get_weather]))
    seen: list[Event] = []
    with pytest.raises(RuntimeError, match="down"):
        async for event in runner.run_async(user_id="u", session_id="s", new_message=user("hi")):
            seen.append(event)
    assert len(seen) == 2
    assert len(await stored(runner)) == 3


async def test_on_model_error_callback_recovers() -> None:
    def recover(
        callback_context: CallbackContext, llm_request: Any, error: Exception
    ) -> LlmResponse:
        return LlmResponse(
            content=types.Content(role="model", parts=[types.Part(text=f"sorry: {error}")])
        )

    model = ScriptedModel(responses=[RuntimeError("down")])
    runner = await new_runner(Agent(name="a", model=model, on_model_error_callback=recover))
    events = await collect(runner)
    assert events[-1].text() == "sorry: down"


# Callbacks and plugins


class RecordingPlugin(BasePlugin):
    def __init__(self, log: list[str]) -> None:
        super().__init__("recorder")
        self.log = log

    async def on_user_message_callback(self, *, invocation_context: Any, user_message: Any) -> None:
        self.log.append("on_user_message")

    async def before_run_callback(self, *, invocation_context: Any) -> None:
        self.log.append("before_run")

    async def before_agent_callback(self, *, agent: Any, callback_context: Any) -> None:
        self.log.append("before_agent")

    async def after_agent_callback(self, *, agent: Any, callback_context: Any) -> None:
        self.log.append("after_agent")

    async def before_model_callback(self, *, callback_context: Any, llm_request: Any) -> None:
        self.log.append("before_model")

    async def after_model_callback(self, *, callback_context: Any, llm_response: Any) -> None:
        self.log.append("after_model")

    async def on_event_callback(self, *, invocation_context: Any, event: Event) -> None:
        kind = (
            "function_call"
            if event.get_function_calls()
            else ("function_response" if event.get_function_responses() else "final")
        )
        self.log.append(f"on_event({kind})")

    async def before_tool_callback(self, *, tool: Any, tool_args: Any, tool_context: Any) -> None:
        self.log.append("before_tool")

    async def after_tool_callback(
        self, *, tool: Any, tool_args: Any, tool_context: Any, result: Any
    ) -> None:
        self.log.append("after_tool")

    async def after_run_callback(self, *, invocation_context: Any) -> None:
        self.log.append("after_run")


async def test_callback_order_for_one_turn_with_a_tool() -> None:
    log: list[str] = []

    def tool(city: str) -> str:
        """Record the call."""
        log.append("TOOL")
        return "sunny"

    model = ScriptedModel(responses=[function_call("tool", {"city": "x"}), "done"])
    runner = InMemoryRunner(
        Agent(name="a", model=model, tools=[tool]), app_name=APP, plugins=[RecordingPlugin(log)]
    )
    await runner.session_service.create_session(app_name=APP, user_id="u", session_id="s")
    await collect(runner)
    assert log == [
        "on_user_message",
        "before_run",
        "before_agent",
        "before_model",
        "after_model",
        "on_event(function_call)",
        "before_tool",
        "TOOL",
        "after_tool",
        "on_event(function_response)",
        "before_model",
        "after_model",
        "on_event(final)",
        "after_agent",
        "after_run",
    ]


async def test_plugins_run_before_agent_callbacks_and_short_circuit() -> None:
    calls: list[str] = []

    class Canned(BasePlugin):
        async def before_model_callback(
            self, *, callback_context: Any, llm_request: Any
        ) -> LlmResponse:
            calls.append("plugin")
            return LlmResponse(
                content=types.Content(role="model", parts=[types.Part(text="canned")])
            )

    def agent_cb(callback_context: Any, llm_request: Any) -> None:
        calls.append("agent")

    model = ScriptedModel(responses=[])
    agent = Agent(name="a", model=model, before_model_callback=agent_cb)
    runner = InMemoryRunner(agent, app_name=APP, plugins=[Canned("canned")])
    await runner.session_service.create_session(app_name=APP, user_id="u", session_id="s")
    events = await collect(runner)
    assert events[-1].text() == "canned" and calls == ["plugin"] and model.calls == 0


async def test_plugin_exception_is_wrapped_with_plugin_and_callback_name() -> None:
    class Broken(BasePlugin):
        async def before_run_callback(self, *, invocation_context: Any) -> None:
            raise KeyError("oops")

    runner = InMemoryRunner(
        Agent(name="a", model=ScriptedModel(responses=["x"])),
        app_name=APP,
        plugins=[Broken("broken")],
    )
    await runner.session_service.create_session(app_name=APP, user_id="u", session_id="s")
    with pytest.raises(
        RuntimeError, match="Error in plugin 'broken' during 'before_run_callback' callback"
    ):
        await collect(runner)


async def test_on_event_plugin_can_replace_event_before_it_is_stored() -> None:
    class Redactor(BasePlugin):
        async def on_event_callback(self, *, invocation_context: Any, event: Event) -> Event | None:
            if event.author == "a":
                return event.model_copy(
                    update={
                        "content": types.Content(
                            role="model", parts=[types.Part(text="[redacted]")]
                        )
                    }
                )
            return None

    runner = InMemoryRunner(
        Agent(name="a", model=ScriptedModel(responses=["secret"])),
        app_name=APP,
        plugins=[Redactor("r")],
    )
    await runner.session_service.create_session(app_name=APP, user_id="u", session_id="s")
    events = await collect(runner)
    assert events[-1].text() == "[redacted]"
    assert (await stored(runner))[-1].text() == "[redacted]"


async def test_before_run_plugin_content_ends_run_early() -> None:
    class Gate(BasePlugin):
        async def before_run_callback(self, *, invocation_context: Any) -> types.Content:
            return types.Content(role="model", parts=[types.Part(text="closed")])

    model = ScriptedModel(responses=[])
    runner = InMemoryRunner(Agent(name="a", model=model), app_name=APP, plugins=[Gate("gate")])
    await runner.session_service.create_session(app_name=APP, user_id="u", session_id="s")
    events = await collect(runner)
    assert [e.text() for e in events] == ["closed"] and model.calls == 0


async def test_after_run_runs_on_early_close_but_not_on_external_cancel() -> None:
    log: list[str] = []
    model = ScriptedModel(responses=[function_call("get_weather", {"city": "x"}), "done"])
    runner = InMemoryRunner(
        Agent(name="a", model=model, tools=[get_weather]),
        app_name=APP,
        plugins=[RecordingPlugin(log)],
    )
    await runner.session_service.create_session(app_name=APP, user_id="u", session_id="s")
    agen = runner.run_async(user_id="u", session_id="s", new_message=user("hi"))
    await anext(agen)
    await agen.aclose()
    assert log[-1] == "after_run"

    log.clear()
    blocker = asyncio.Event()

    async def never(llm_request: Any) -> str:
        await blocker.wait()
        return "never"

    model2 = ScriptedModel(responses=[never])
    runner2 = InMemoryRunner(
        Agent(name="b", model=model2), app_name=APP, plugins=[RecordingPlugin(log)]
    )
    await runner2.session_service.create_session(app_name=APP, user_id="u", session_id="s")

    async def consume() -> None:
        async for _ in runner2.run_async(user_id="u", session_id="s", new_message=user("hi")):
            pass

    task = asyncio.create_task(consume())
    while "before_model" not in log:
        await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert "after_run" not in log


async def test_agent_before_callback_content_skips_agent() -> None:
    def gate(callback_context: CallbackContext) -> types.Content:
        return types.Content(role="model", parts=[types.Part(text="skipped")])

    model = ScriptedModel(responses=[])
    runner = await new_runner(Agent(name="a", model=model, before_agent_callback=gate))
    events = await collect(runner)
    assert [e.text() for e in events] == ["skipped"] and model.calls == 0


async def test_tool_callbacks_can_skip_and_replace_results() -> None:
    def before(tool: Any, args: dict[str, Any], tool_context: ToolContext) -> dict[str, Any] | None:
        return {"cached": True} if args.get("city") == "Paris" else None

    def after(
        tool: Any, args: dict[str, Any], tool_context: ToolContext, tool_response: Any
    ) -> dict[str, Any]:
        return {**tool_response, "checked": True}

    model = ScriptedModel(
        responses=[
            [
                function_call("get_weather", {"city": "Paris"}),
                function_call("get_weather", {"city": "Rome"}),
            ],
            "ok",
        ]
    )
    agent = Agent(
        name="a",
        model=model,
        tools=[get_weather],
        before_tool_callback=before,
        after_tool_callback=after,
    )
    runner = await new_runner(agent)
    events = await collect(runner)
    results = [r.response for r in events[1].get_function_responses()]
    assert results == [
        {"cached": True, "checked": True},
        {"city": "Rome", "celsius": 21, "checked": True},
    ]


# Sync wrapper and debug helper


def test_sync_run_yields_events_from_background_thread() -> None:
    runner = InMemoryRunner(Agent(name="a", model=ScriptedModel(responses=["hello"])), app_name=APP)
    asyncio.run(runner.session_service.create_session(app_name=APP, user_id="u", session_id="s"))
    events = list(runner.run(user_id="u", session_id="s", new_message=user("hi")))
    assert [e.text() for e in events] == ["hello"]


def test_sync_run_reraises_after_events_produced_before_the_error() -> None:
    model = ScriptedModel(
        responses=[function_call("get_weather", {"city": "x"}), ValueError("bad model")]
    )
    runner = InMemoryRunner(Agent(name="a", model=model, tools=[get_weather]), app_name=APP)
    asyncio.run(runner.session_service.create_session(app_name=APP, user_id="u", session_id="s"))
    seen: list[Event] = []
    with pytest.raises(ValueError, match="bad model"):
        for event in runner.run(user_id="u", session_id="s", new_message=user("hi")):
            seen.append(event)
    assert len(seen) == 2


def _early_stop_runner(log: list[str], tool_runs: list[str]) -> InMemoryRunner:
    async def slow_tool() -> str:
        """A tool the early stop must keep from running."""
        tool_runs.append("slow_tool")
        await asyncio.sleep(30)
        return "late"

    model = ScriptedModel(responses=[function_call("slow_tool"), "never"])
    agent = Agent(name="a", model=model, tools=[slow_tool])
    return InMemoryRunner(agent, app_name=APP, plugins=[RecordingPlugin(log)])


async def _run_async_then_aclose(log: list[str], tool_runs: list[str]) -> list[Event]:
    runner = _early_stop_runner(log, tool_runs)
    await runner.session_service.create_session(app_name=APP, user_id="u", session_id="s")
    agen = runner.run_async(user_id="u", session_id="s", new_message=user("hi"))
    assert (await anext(agen)).get_function_calls()
    await agen.aclose()
    return await stored(runner)


def test_sync_run_closed_early_runs_after_run_exactly_as_aclose_does() -> None:
    async_log: list[str] = []
    async_tools: list[str] = []
    async_stored = asyncio.run(_run_async_then_aclose(async_log, async_tools))

    log: list[str] = []
    tool_runs: list[str] = []
    runner = _early_stop_runner(log, tool_runs)
    asyncio.run(runner.session_service.create_session(app_name=APP, user_id="u", session_id="s"))
    gen = runner.run(user_id="u", session_id="s", new_message=user("hi"))
    assert next(gen).get_function_calls()
    gen.close()  # returns once the background run is closed

    assert log[-1] == "after_run"
    assert log == async_log
    assert tool_runs == async_tools == []
    session = asyncio.run(
        runner.session_service.get_session(app_name=APP, user_id="u", session_id="s")
    )
    assert session is not None
    assert [e.author for e in session.events] == [e.author for e in async_stored]


def test_sync_run_break_out_of_a_for_loop_runs_after_run() -> None:
    log: list[str] = []
    runner = _early_stop_runner(log, [])
    asyncio.run(runner.session_service.create_session(app_name=APP, user_id="u", session_id="s"))
    for _event in runner.run(user_id="u", session_id="s", new_message=user("hi")):
        break
    # CPython closes the abandoned generator at once (refcount), which waits for after_run.
    assert log[-1] == "after_run"


def test_sync_run_interrupted_while_waiting_cancels_the_step_in_flight() -> None:
    log: list[str] = []
    cancelled, waiting = threading.Event(), threading.Event()

    async def never(llm_request: Any) -> str:
        waiting.set()
        try:
            await asyncio.sleep(30)
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return "never"

    agent = Agent(name="a", model=ScriptedModel(responses=[never]))
    runner = InMemoryRunner(agent, app_name=APP, plugins=[RecordingPlugin(log)])
    asyncio.run(runner.session_service.create_session(app_name=APP, user_id="u", session_id="s"))
    main = threading.get_ident()

    def interrupt_once_the_model_waits() -> None:
        if waiting.wait(10):  # the caller is blocked in next() meanwhile
            signal.pthread_kill(main, signal.SIGINT)

    threading.Thread(target=interrupt_once_the_model_waits, daemon=True).start()
    with pytest.raises(KeyboardInterrupt):
        list(runner.run(user_id="u", session_id="s", new_message=user("hi")))
    assert cancelled.is_set()  # the generator's cleanup waited for the cancelled step
    assert "after_run" not in log  # like an external cancel of run_async


def test_sync_run_missing_session_raises() -> None:
    runner = InMemoryRunner(Agent(name="a", model=ScriptedModel(responses=["x"])), app_name=APP)
    with pytest.raises(SessionNotFoundError):
        list(runner.run(user_id="u", session_id="missing", new_message=user("hi")))


async def test_run_debug_creates_session_runs_messages_and_prints(
    capsys: pytest.CaptureFixture[str],
) -> None:
    runner = InMemoryRunner(
        Agent(name="a", model=ScriptedModel(responses=["first", "second"])), app_name=APP
    )
    events = await runner.run_debug(["hello", "again"])
    assert [e.text() for e in events] == ["first", "second"]
    out = capsys.readouterr().out
    assert "User > hello" in out and "a > first" in out and "a > second" in out
    session = await runner.session_service.get_session(
        app_name=APP, user_id="debug_user_id", session_id="debug_session_id"
    )
    assert session is not None and len(session.events) == 4
    quiet_runner = InMemoryRunner(
        Agent(name="a", model=ScriptedModel(responses=["x"])), app_name=APP
    )
    await quiet_runner.run_debug("hi", quiet=True)
    assert capsys.readouterr().out == ""


async def test_close_session_feeds_memory_search() -> None:
    def recall(query: str, tool_context: ToolContext) -> list[str]:
        """Search memory."""
        raise AssertionError("not used")

    runner = await new_runner(
        Agent(name="a", model=ScriptedModel(responses=["The capital of France is Paris."]))
    )
    await collect(runner, "capital of France?")
    session = await runner.session_service.get_session(app_name=APP, user_id="u", session_id="s")
    assert session is not None
    await runner.close_session(session)
    assert runner.memory_service is not None
    found = await runner.memory_service.search_memory(
        app_name=APP, user_id="u", query="Paris capital"
    )
    assert found.memories and "Paris" in found.memories[0].content.parts[0].text
    other = await runner.memory_service.search_memory(
        app_name=APP, user_id="someone", query="Paris"
    )
    assert other.memories == []


async def test_tool_can_search_memory() -> None:
    async def recall(query: str, tool_context: ToolContext) -> list[str]:
        """Search memory."""
        result = await tool_context.search_memory(query)
        return [m.content.parts[0].text for m in result.memories]

    first = await new_runner(
        Agent(name="a", model=ScriptedModel(responses=["Blue is my favourite colour."]))
    )
    await collect(first, "remember")
    session = await first.session_service.get_session(app_name=APP, user_id="u", session_id="s")
    assert session is not None and first.memory_service is not None
    await first.memory_service.add_session_to_memory(session)
    model = ScriptedModel(
        responses=[function_call("recall", {"query": "favourite colour"}), "Blue."]
    )
    runner = Runner(
        app_name=APP,
        agent=Agent(name="a", model=model, tools=[recall]),
        session_service=first.session_service,
        memory_service=first.memory_service,
    )
    await runner.session_service.create_session(app_name=APP, user_id="u", session_id="s2")
    events = [
        e async for e in runner.run_async(user_id="u", session_id="s2", new_message=user("colour?"))
    ]
    assert events[1].get_function_responses()[0].response == {
        "result": ["Blue is my favourite colour."]
    }


async def test_async_with_closes_plugins() -> None:
    closed: list[str] = []

    class Closer(BasePlugin):
        async def close(self) -> None:
            closed.append(self.name)

    async with InMemoryRunner(Agent(name="a", model=ScriptedModel()), plugins=[Closer("c")]):
        pass
    assert closed == ["c"]


# Long-running tools and resumption


async def test_long_running_tool_pauses_and_resumes_on_function_response() -> None:
    def ask_approval(amount: int) -> dict[str, Any]:
        """Ask a human to approve."""
        return {"status": "pending"}

    model = ScriptedModel(
        responses=[function_call("ask_approval", {"amount": 50}), "Approved, paying."]
    )
    app = App(
        name=APP,
        root_agent=Agent(name="a", model=model, tools=[LongRunningFunctionTool(ask_approval)]),
        resumability_config=ResumabilityConfig(is_resumable=True),
    )
    runner = InMemoryRunner(app=app)
    await runner.session_service.create_session(app_name=APP, user_id="u", session_id="s")
    events = await collect(runner, "pay 50")
    call = events[0].get_function_calls()[0]
    assert events[0].long_running_tool_ids == {call.id}
    assert events[0].is_final_response()
    assert events[1].get_function_responses()[0].response == {"status": "pending"}
    assert model.calls == 1  # paused: no second model call

    answer = types.Content(
        role="user",
        parts=[
            types.Part(
                function_response=types.FunctionResponse(
                    id=call.id, name="ask_approval", response={"status": "approved"}
                )
            )
        ],
    )
    resumed = [
        e
        async for e in runner.run_async(
            user_id="u", session_id="s", new_message=answer, invocation_id=events[0].invocation_id
        )
    ]
    assert resumed[-2].text() == "Approved, paying."
    # Resumable apps record that the agent finished (the reference runtime's checkpoint).
    assert resumed[-1].actions.end_of_agent and resumed[-1].author == "a"
    assert resumed[-1].content is None
    last_request = model.requests[-1].contents
    assert last_request[-2].parts[0].function_call.name == "ask_approval"
    assert last_request[-1].parts[0].function_response.response == {"status": "approved"}


async def test_long_running_tool_without_resumability_lets_model_report_pending() -> None:
    def ask_approval(amount: int) -> dict[str, Any]:
        """Ask a human to approve."""
        return {"status": "pending"}

    model = ScriptedModel(
        responses=[function_call("ask_approval", {"amount": 5}), "Waiting for approval."]
    )
    runner = await new_runner(
        Agent(name="a", model=model, tools=[LongRunningFunctionTool(ask_approval)])
    )
    events = await collect(runner)
    assert events[-1].text() == "Waiting for approval."
    assert model.requests[-1].contents[-1].parts[0].function_response.response == {
        "status": "pending"
    }


async def test_answer_open_calls_repairs_a_cancelled_tool_call() -> None:
    release = asyncio.Event()

    async def slow(city: str) -> str:
        """Never finishes in this test."""
        await release.wait()
        return "late"

    model = ScriptedModel(responses=[function_call("slow", {"city": "x"}), "after repair"])
    runner = await new_runner(Agent(name="a", model=model, tools=[slow]))
    agen = runner.run_async(user_id="u", session_id="s", new_message=user("hi"))
    call_event = await anext(agen)
    await agen.aclose()  # the run is cancelled while the tool runs
    answered = await runner.answer_open_calls(
        user_id="u",
        session_id="s",
        invocation_id=call_event.invocation_id,
        response={"error": "cancelled"},
    )
    assert answered == 1
    last = (await stored(runner))[-1]
    response = last.get_function_responses()[0]
    assert response.id == call_event.get_function_calls()[0].id
    assert response.response == {"error": "cancelled"} and last.author == "a"
    # Nothing is left open, so a second repair is a no-op, and the next run works.
    assert await runner.answer_open_calls(user_id="u", session_id="s") == 0
    events = await collect(runner, "again")
    assert events[-1].text() == "after repair"


async def test_answer_open_calls_leaves_long_running_calls_alone() -> None:
    def approve() -> None:
        """Ask for approval."""
        return None

    model = ScriptedModel(responses=[function_call("approve"), "waiting"])
    runner = await new_runner(
        Agent(name="a", model=model, tools=[LongRunningFunctionTool(approve)])
    )
    await collect(runner)
    assert await runner.answer_open_calls(user_id="u", session_id="s") == 0
    assert await runner.answer_open_calls(user_id="u", session_id="missing") == 0
