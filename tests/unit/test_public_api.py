"""Pin each package's public API (`__all__`): removing or renaming a name must be deliberate."""

from __future__ import annotations

import importlib

import pytest

EXACT: dict[str, set[str]] = {
    "app.events": {
        "Event",
        "EventActions",
        "EventCompaction",
        "LlmResponse",
        "new_event_id",
        "new_invocation_id",
    },
    "app.agents": {
        "Agent",
        "BaseAgent",
        "CallbackContext",
        "InvocationContext",
        "LiveRequest",
        "LiveRequestQueue",
        "LlmAgent",
        "LoopAgent",
        "ParallelAgent",
        "ReadonlyContext",
        "RunConfig",
        "SequentialAgent",
        "StreamingMode",
    },
    "app.tools": {
        "BaseTool",
        "FunctionTool",
        "LoadMemoryResponse",
        "LoadMemoryTool",
        "LongRunningFunctionTool",
        "PreloadMemoryTool",
        "ToolContext",
        "TransferToAgentTool",
        "load_memory",
        "load_memory_tool",
        "preload_memory_tool",
    },
    "app.plugins": {"BasePlugin", "PluginManager"},
    "app.apps": {"App", "EventsCompactionConfig", "ResumabilityConfig"},
    "app.artifacts": {
        "ArtifactVersion",
        "BaseArtifactService",
        "DatabaseArtifactService",
        "InMemoryArtifactService",
    },
    "app.memory": {
        "BaseMemoryService",
        "DatabaseMemoryService",
        "InMemoryMemoryService",
        "MemoryEntry",
        "SearchMemoryResponse",
    },
    "app.auth.credential_service": {"BaseCredentialService", "InMemoryCredentialService"},
    "app.runners": {"InMemoryRunner", "Runner"},
}

# Packages still growing (new backends, models, test doubles): pin what must stay.
AT_LEAST: dict[str, set[str]] = {
    "app.sessions": {
        "AlreadyExistsError",
        "BaseSessionService",
        "GetSessionConfig",
        "InMemorySessionService",
        "ListSessionsResponse",
        "Session",
        "SessionNotFoundError",
        "StaleSessionError",
        "State",
    },
    "app.models": {
        "BaseLlm",
        "BaseLlmConnection",
        "Gemini",
        "LLMRegistry",
        "LlmRequest",
        "LlmResponse",
    },
    "app.testing": {
        "FakeGemini",
        "FakeGeminiError",
        "FakeLiveInterrupt",
        "ScriptExhaustedError",
        "ScriptedModel",
        "function_call",
        "serve_fake_gemini",
    },
    "app.observability": {"logs", "metrics", "tracing"},
}


def exported(module_name: str) -> list[str]:
    module = importlib.import_module(module_name)
    names = module.__all__
    assert isinstance(names, list | tuple)
    return list(names)


@pytest.mark.parametrize("module_name", sorted(EXACT))
def test_all_is_exactly_the_pinned_set(module_name: str) -> None:
    assert set(exported(module_name)) == EXACT[module_name]


@pytest.mark.parametrize("module_name", sorted(AT_LEAST))
def test_all_keeps_the_pinned_names(module_name: str) -> None:
    missing = AT_LEAST[module_name] - set(exported(module_name))

    assert not missing, f"{module_name}.__all__ lost {sorted(missing)}"


@pytest.mark.parametrize("module_name", sorted(EXACT | AT_LEAST))
def test_every_exported_name_is_importable_and_listed_once(module_name: str) -> None:
    module = importlib.import_module(module_name)
    names = exported(module_name)

    assert len(names) == len(set(names)), f"duplicates in {module_name}.__all__"
    for name in names:
        assert getattr(module, name, None) is not None, f"{module_name}.{name} is not importable"
        namespace: dict[str, object] = {}
        exec(f"from {module_name} import {name}", namespace)  # the way users import it
        assert namespace[name] is getattr(module, name)


def test_shared_names_are_the_same_objects_everywhere() -> None:
    from app.errors import SessionNotFoundError as ErrorsError
    from app.events import LlmResponse as EventsLlmResponse
    from app.models import LlmResponse as ModelsLlmResponse
    from app.sessions import SessionNotFoundError as SessionsError

    assert EventsLlmResponse is ModelsLlmResponse
    assert SessionsError is ErrorsError
