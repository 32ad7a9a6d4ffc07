"""PluginManager: order, short-circuit, error wrapping and bounded close."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest
from google.genai import types

from app.plugins import BasePlugin, PluginManager


class Recorder(BasePlugin):
    """Records its before_run calls in a shared log and returns a fixed value."""

    def __init__(self, name: str, log: list[str], returns: Any = None) -> None:
        super().__init__(name)
        self.log = log
        self.returns = returns

    async def before_run_callback(self, *, invocation_context: Any) -> types.Content | None:
        self.log.append(self.name)
        return self.returns  # type: ignore[no-any-return]

    async def close(self) -> None:
        self.log.append(f"close:{self.name}")


class Failing(BasePlugin):
    async def before_run_callback(self, *, invocation_context: Any) -> types.Content | None:
        raise ValueError("kaput")


class HangingClose(BasePlugin):
    def __init__(self, name: str) -> None:
        super().__init__(name)
        self.started = asyncio.Event()
        self.cancelled = False

    async def close(self) -> None:
        self.started.set()
        try:
            await asyncio.Event().wait()  # never set: only a timeout ends this
        except asyncio.CancelledError:
            self.cancelled = True
            raise


class FailingClose(BasePlugin):
    async def close(self) -> None:
        raise OSError("disk gone")


REPLY = types.Content(role="model", parts=[types.Part(text="stop here")])


async def test_callbacks_run_in_registration_order() -> None:
    log: list[str] = []
    manager = PluginManager([Recorder("first", log), Recorder("second", log)])
    manager.register_plugin(Recorder("third", log))

    result = await manager.run("before_run_callback", invocation_context=None)

    assert result is None
    assert log == ["first", "second", "third"]
    assert [p.name for p in manager.plugins] == ["first", "second", "third"]


async def test_first_non_none_result_short_circuits_the_rest() -> None:
    log: list[str] = []
    manager = PluginManager(
        [Recorder("quiet", log), Recorder("answers", log, REPLY), Recorder("skipped", log)]
    )

    result = await manager.run("before_run_callback", invocation_context=None)

    assert result is REPLY
    assert log == ["quiet", "answers"]


async def test_callback_that_no_plugin_overrides_returns_none() -> None:
    manager = PluginManager([Recorder("r", [])])

    assert not manager.has("after_run_callback")
    assert manager.has("before_run_callback")
    assert await manager.run("after_run_callback", invocation_context=None) is None


def test_duplicate_plugin_name_is_rejected() -> None:
    manager = PluginManager([Recorder("audit", [])])

    with pytest.raises(ValueError, match="audit"):
        manager.register_plugin(Recorder("audit", []))

    assert len(manager.plugins) == 1


def test_duplicate_plugin_name_in_constructor_is_rejected() -> None:
    with pytest.raises(ValueError, match="audit"):
        PluginManager([Recorder("audit", []), Recorder("audit", [])])


def test_get_plugin_finds_by_name() -> None:
    plugin = Recorder("audit", [])
    manager = PluginManager([plugin])

    assert manager.get_plugin("audit") is plugin
    assert manager.get_plugin("missing") is None


async def test_plugin_exception_is_wrapped_with_plugin_and_callback_names() -> None:
    log: list[str] = []
    manager = PluginManager([Failing("breaker"), Recorder("after", log)])

    with pytest.raises(RuntimeError) as info:
        await manager.run("before_run_callback", invocation_context=None)

    assert str(info.value) == (
        "Error in plugin 'breaker' during 'before_run_callback' callback: kaput"
    )
    assert isinstance(info.value.__cause__, ValueError)
    assert log == []


async def test_close_closes_every_plugin_in_order() -> None:
    log: list[str] = []
    manager = PluginManager([Recorder("a", log), Recorder("b", log)])

    await manager.close()

    assert log == ["close:a", "close:b"]


async def test_hanging_close_is_cut_off_and_the_next_plugin_still_closes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    log: list[str] = []
    hanging = HangingClose("stuck")
    manager = PluginManager([hanging, Recorder("next", log)], close_timeout=0.05)

    with caplog.at_level(logging.WARNING, logger="app.plugins"):
        async with asyncio.timeout(10):  # a guard, not a speed assertion
            with pytest.raises(
                RuntimeError, match="Failed to close plugins: 'stuck': TimeoutError"
            ):
                await manager.close()

    assert hanging.started.is_set()
    assert hanging.cancelled
    assert log == ["close:next"]
    assert "stuck" in caplog.text


async def test_failing_close_does_not_stop_the_next_plugin() -> None:
    log: list[str] = []
    manager = PluginManager([FailingClose("broken"), Recorder("next", log)])

    # Every plugin is tried; the failures are reported together afterwards.
    with pytest.raises(RuntimeError, match="Failed to close plugins: 'broken': OSError"):
        await manager.close()

    assert log == ["close:next"]
