"""load_memory and preload_memory reach the model request, on every memory backend."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from google.genai import types

from app.agents import Agent
from app.memory import BaseMemoryService, DatabaseMemoryService, InMemoryMemoryService
from app.runners import Runner
from app.sessions import BaseSessionService, DatabaseSessionService, InMemorySessionService
from app.testing import ScriptedModel, function_call
from app.tools import (
    LoadMemoryTool,
    PreloadMemoryTool,
    ToolContext,
    load_memory_tool,
    preload_memory_tool,
)
from app.tools.load_memory_tool import MEMORY_INSTRUCTION

APP = "memory_tools"
BACKENDS = [
    pytest.param("memory", id="memory"),
    pytest.param("sqlite", id="sqlite"),
    pytest.param("postgres", id="postgres", marks=pytest.mark.postgres),
]


@dataclass
class Stores:
    sessions: BaseSessionService
    memory: BaseMemoryService


@pytest.fixture(params=BACKENDS)
async def stores(request: pytest.FixtureRequest) -> AsyncIterator[Stores]:
    """Session and memory services on one backend, with two users' closed conversations."""
    if request.param == "memory":
        opened = Stores(InMemorySessionService(), InMemoryMemoryService())
    else:
        fixture = "pg_db_url" if request.param == "postgres" else "sqlite_db_url"
        url = request.getfixturevalue(fixture)
        sessions = DatabaseSessionService(url)
        opened = Stores(sessions, DatabaseMemoryService(engine=sessions.engine))
    try:
        for user_id, colour in (("u", "teal"), ("other", "crimson")):
            await remember(opened, user_id, f"my favourite colour is {colour}")
        yield opened
    finally:
        await opened.memory.close()
        await opened.sessions.close()


def user(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=text)])


async def remember(stores: Stores, user_id: str, text: str) -> None:
    """Have a conversation in a new session and close it into memory."""
    model = ScriptedModel(responses=["Noted."])
    runner = Runner(
        app_name=APP,
        agent=Agent(name="bot", model=model),
        session_service=stores.sessions,
        memory_service=stores.memory,
    )
    session = await stores.sessions.create_session(app_name=APP, user_id=user_id)
    async for _ in runner.run_async(user_id=user_id, session_id=session.id, new_message=user(text)):
        pass
    closed = await stores.sessions.get_session(app_name=APP, user_id=user_id, session_id=session.id)
    assert closed is not None and await runner.close_session(closed)


async def ask(stores: Stores, model: ScriptedModel, tools: list[object], text: str) -> None:
    runner = Runner(
        app_name=APP,
        agent=Agent(name="bot", model=model, instruction="Be brief.", tools=tools),
        session_service=stores.sessions,
        memory_service=stores.memory,
    )
    session = await stores.sessions.create_session(app_name=APP, user_id="u")
    async for _ in runner.run_async(user_id="u", session_id=session.id, new_message=user(text)):
        pass


def declared(model: ScriptedModel, call: int) -> list[str]:
    tools = model.requests[call].config.tools or []
    return [d.name or "" for t in tools for d in (t.function_declarations or [])]


async def test_preload_memory_puts_the_users_memories_in_the_instruction(stores: Stores) -> None:
    model = ScriptedModel(responses=["Teal."])

    await ask(stores, model, [preload_memory_tool], "What is my favourite colour?")

    instruction = model.requests[0].system_instruction_text()
    assert instruction.startswith("Be brief.")
    past = instruction.split("<PAST_CONVERSATIONS>\n", 1)[1].split("\n</PAST_CONVERSATIONS>")[0]
    lines = past.splitlines()
    assert "user: my favourite colour is teal" in lines
    assert any(line.startswith("Time: ") for line in lines)
    assert "crimson" not in instruction  # another user's memory
    assert declared(model, 0) == []  # the model cannot call it


async def test_preload_memory_adds_nothing_when_nothing_matches(stores: Stores) -> None:
    model = ScriptedModel(responses=["Hello."])

    await ask(stores, model, [PreloadMemoryTool()], "zyzzyva")

    assert model.requests[0].system_instruction_text() == "Be brief."


async def test_load_memory_is_declared_and_returns_the_users_memories(stores: Stores) -> None:
    model = ScriptedModel(
        responses=[function_call("load_memory", {"query": "favourite colour"}), "Teal."]
    )

    await ask(stores, model, [load_memory_tool], "What is my favourite colour?")

    assert declared(model, 0) == ["load_memory"]
    assert MEMORY_INSTRUCTION in model.requests[0].system_instruction_text()
    (part,) = model.requests[1].contents[-1].parts or []
    assert part.function_response is not None and part.function_response.name == "load_memory"
    memories = (part.function_response.response or {})["memories"]
    assert [m["content"]["parts"][0]["text"] for m in memories] == ["my favourite colour is teal"]
    assert memories[0]["author"] == "user" and "crimson" not in str(memories)
    assert all(value is not None for value in memories[0].values())  # compact: no nulls


async def test_load_memory_with_bad_arguments_tells_the_model(stores: Stores) -> None:
    model = ScriptedModel(responses=[function_call("load_memory", {"q": 1}), "Sorry."])

    await ask(stores, model, [LoadMemoryTool()], "colour?")

    (part,) = model.requests[1].contents[-1].parts or []
    assert part.function_response is not None
    assert "query" in (part.function_response.response or {})["error"]


async def test_tool_context_search_memory_works_on_every_backend(stores: Stores) -> None:
    seen: list[str] = []

    async def recall(query: str, tool_context: ToolContext) -> dict[str, int]:
        """Search memory."""
        found = await tool_context.search_memory(query)
        seen.extend(m.content.parts[0].text or "" for m in found.memories if m.content.parts)
        return {"found": len(found.memories)}

    model = ScriptedModel(responses=[function_call("recall", {"query": "colour"}), "Done."])

    await ask(stores, model, [recall], "colour?")

    assert seen == ["my favourite colour is teal"]
