"""PluginManager's per-callback entry points and the error notifications, as in the reference."""

from __future__ import annotations

from typing import Any, get_args

import pytest
from google.genai import types

from app.agents import Agent, SequentialAgent
from app.plugins import BasePlugin, PluginManager
from app.plugins.plugin_manager import PluginCallbackName
from app.runners import InMemoryRunner
from app.testing import ScriptedModel

# Each entry point, the keyword arguments it takes, and whether it returns the first result.
ENTRY_POINTS: dict[str, tuple[dict[str, Any], bool]] = {
    "on_user_message_callback": ({"user_message": "m", "invocation_context": "c"}, True),
    "before_run_callback": ({"invocation_context": "c"}, True),
    "after_run_callback": ({"invocation_context": "c"}, False),
    "on_event_callback": ({"invocation_context": "c", "event": "e"}, True),
    "before_agent_callback": ({"agent": "a", "callback_context": "cc"}, True),
    "after_agent_callback": ({"agent": "a", "callback_context": "cc"}, True),
    "before_tool_callback": ({"tool": "t", "tool_args": {}, "tool_context": "tc"}, True),
    "after_tool_callback": (
        {"tool": "t", "tool_args": {}, "tool_context": "tc", "result": {}},
        True,
    ),
    "on_tool_error_callback": (
        {"tool": "t", "tool_args": {}, "tool_context": "tc", "error": ValueError()},
        True,
    ),
    "before_model_callback": ({"callback_context": "cc", "llm_request": "r"}, True),
    "after_model_callback": ({"callback_context": "cc", "llm_response": "r"}, True),
    "on_model_error_callback": (
        {"callback_context": "cc", "llm_request": "r", "error": ValueError()},
        True,
    ),
}


class Scripted(BasePlugin):
    """Answers every callback from `returns` (or raises `raises`), logging each call."""

    def __init__(self, name: str, log: list[str], returns: Any = None, raises: bool = False):
        super().__init__(name)
        for callback in get_args(PluginCallbackName):

            async def handler(_callback: str = callback, **kwargs: Any) -> Any:
                log.append(f"{self.name}:{_callback}")
                if raises:
                    raise ValueError(f"{self.name} broke")
                return returns

            setattr(self, callback, handler)


def test_every_callback_has_an_entry_point() -> None:
    names = set(get_args(PluginCallbackName))
    assert names == set(ENTRY_POINTS) | {"on_agent_error_callback", "on_run_error_callback"}
    for name in names:
        assert callable(getattr(PluginManager, f"run_{name}"))


@pytest.mark.parametrize("callback", sorted(ENTRY_POINTS))
async def test_first_result_wins_and_later_plugins_are_skipped(callback: str) -> None:
    kwargs, returns_first = ENTRY_POINTS[callback]
    log: list[str] = []
    manager = PluginManager(
        [Scripted("quiet", log), Scripted("answers", log, returns="X"), Scripted("late", log)]
    )
    result = await getattr(manager, f"run_{callback}")(**kwargs)
    assert log == [f"quiet:{callback}", f"answers:{callback}"]
    assert result == ("X" if returns_first else None)


@pytest.mark.parametrize("callback", sorted(ENTRY_POINTS))
async def test_a_plugin_error_is_wrapped_naming_plugin_and_callback(callback: str) -> None:
    kwargs, _ = ENTRY_POINTS[callback]
    manager = PluginManager([Scripted("broken", [], raises=True)])
    with pytest.raises(RuntimeError) as info:
        await getattr(manager, f"run_{callback}")(**kwargs)
    assert str(info.value) == f"Error in plugin 'broken' during '{callback}' callback: broken broke"
    assert isinstance(info.value.__cause__, ValueError)


async def test_error_notifications_reach_every_plugin_despite_errors() -> None:
    log: list[str] = []
    manager = PluginManager([Scripted("broken", log, raises=True), Scripted("ok", log, "X")])
    await manager.run_on_agent_error_callback(agent="a", callback_context="c", error=ValueError())
    await manager.run_on_run_error_callback(invocation_context="c", error=ValueError())
    assert log == [
        "broken:on_agent_error_callback",
        "ok:on_agent_error_callback",
        "broken:on_run_error_callback",
        "ok:on_run_error_callback",
    ]


class ErrorWatcher(BasePlugin):
    def __init__(self) -> None:
        super().__init__("watcher")
        self.seen: list[tuple[str, str]] = []

    async def on_agent_error_callback(
        self, *, agent: Any, callback_context: Any, error: Exception
    ) -> None:
        self.seen.append(("agent", agent.name))

    async def on_run_error_callback(self, *, invocation_context: Any, error: Exception) -> None:
        self.seen.append(("run", str(error)))


async def test_a_failing_agent_notifies_each_enclosing_agent_then_the_run() -> None:
    watcher = ErrorWatcher()
    inner = Agent(name="inner", model=ScriptedModel(responses=[RuntimeError("model down")]))
    root = SequentialAgent(name="root", sub_agents=[inner])
    runner = InMemoryRunner(agent=root, app_name="errs", plugins=[watcher])
    session = await runner.session_service.create_session(app_name="errs", user_id="u")
    message = types.Content(role="user", parts=[types.Part(text="hi")])
    with pytest.raises(RuntimeError, match="model down"):
        async for _ in runner.run_async(user_id="u", session_id=session.id, new_message=message):
            pass
    assert watcher.seen == [("agent", "inner"), ("agent", "root"), ("run", "model down")]
