"""inject_state: `{key}` placeholders in instructions filled from state and artifacts."""

from __future__ import annotations

from typing import Any

import pytest
from google.genai import types

from app.agents import InvocationContext, LlmAgent, ReadonlyContext
from app.artifacts import InMemoryArtifactService
from app.flows.instructions import inject_state
from app.plugins import PluginManager
from app.sessions import InMemorySessionService, Session
from app.testing import ScriptedModel


def context(
    state: dict[str, Any] | None = None, artifacts: InMemoryArtifactService | None = None
) -> ReadonlyContext:
    invocation = InvocationContext(
        invocation_id="e-test",
        agent=LlmAgent(name="assistant", model=ScriptedModel()),
        session=Session(id="s1", app_name="app", user_id="u1", state=state or {}),
        session_service=InMemorySessionService(),
        plugin_manager=PluginManager(),
        artifact_service=artifacts,
    )
    return ReadonlyContext(invocation)


async def test_key_is_replaced_by_its_state_value() -> None:
    result = await inject_state(
        "Hello {name}, you have {count} items.", context({"name": "Ada", "count": 3})
    )

    assert result == "Hello Ada, you have 3 items."


async def test_state_values_are_inserted_verbatim_not_expanded_again() -> None:
    state = {"note": "ignore {secret} and {missing}", "secret": "hunter2"}

    assert (
        await inject_state("Note: {note}", context(state)) == "Note: ignore {secret} and {missing}"
    )


async def test_text_without_placeholders_is_unchanged() -> None:
    assert await inject_state("Be brief.", context()) == "Be brief."


async def test_missing_required_key_raises_key_error() -> None:
    with pytest.raises(KeyError, match="name"):
        await inject_state("Hello {name}", context({}))


async def test_optional_key_becomes_empty_when_missing() -> None:
    result = await inject_state("Hello {name?}!", context({}))

    assert result == "Hello !"


async def test_optional_key_is_replaced_when_present() -> None:
    assert await inject_state("Hello {name?}!", context({"name": "Ada"})) == "Hello Ada!"


@pytest.mark.parametrize("key", ["app:theme", "user:name", "temp:step"])
async def test_prefixed_keys_are_replaced(key: str) -> None:
    result = await inject_state(f"[{{{key}}}]", context({key: "value"}))

    assert result == "[value]"


async def test_whitespace_inside_braces_is_ignored() -> None:
    assert await inject_state("{ name }", context({"name": "Ada"})) == "Ada"


@pytest.mark.parametrize(
    "template",
    [
        'Answer as JSON: {"answer": "...", "score": 1}',
        'Nested: {"outer": {"inner": [1, 2]}}',
        "Set notation {1, 2, 3} and {}",
        "Unknown scope {foo:bar} and a path {a.b}",
        "Code: def f(): return {x: y for x in z}",
    ],
)
async def test_braces_around_non_identifiers_are_left_as_is(template: str) -> None:
    assert await inject_state(template, context({"x": "X", "y": "Y"})) == template


async def test_artifact_placeholder_is_replaced_by_its_text() -> None:
    artifacts = InMemoryArtifactService()
    await artifacts.save_artifact(
        app_name="app",
        user_id="u1",
        session_id="s1",
        filename="notes.txt",
        artifact=types.Part(text="old notes"),
    )
    await artifacts.save_artifact(
        app_name="app",
        user_id="u1",
        session_id="s1",
        filename="notes.txt",
        artifact=types.Part(text="latest notes"),
    )

    result = await inject_state("Notes: {artifact.notes.txt}", context(artifacts=artifacts))

    assert result == "Notes: latest notes"


async def test_missing_artifact_raises_key_error_unless_optional() -> None:
    ctx = context(artifacts=InMemoryArtifactService())

    with pytest.raises(KeyError, match=r"notes\.txt"):
        await inject_state("{artifact.notes.txt}", ctx)
    assert await inject_state("[{artifact.notes.txt?}]", ctx) == "[]"


async def test_artifact_placeholder_without_artifact_service_is_an_error() -> None:
    with pytest.raises(ValueError, match="artifact service"):
        await inject_state("{artifact.notes.txt}", context())
