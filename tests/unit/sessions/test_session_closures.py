"""Closing sessions into memory, on every store: once per event, once across replicas."""

from __future__ import annotations

import asyncio
import time

import pytest
from google.genai import types

from app.agents import Agent
from app.events import Event
from app.memory import BaseMemoryService, DatabaseMemoryService, InMemoryMemoryService
from app.runners import Runner
from app.sessions import BaseSessionService, Session
from app.testing import ScriptedModel

from .session_stores import Store

APP, USER = "close_app", "u"


def said(author: str, text: str) -> Event:
    role = "user" if author == "user" else "model"
    return Event(
        author=author,
        invocation_id="e-1",
        content=types.Content(role=role, parts=[types.Part(text=text)]),
    )


async def session_with(service: BaseSessionService, sid: str, *texts: str) -> Session:
    session = await service.create_session(app_name=APP, user_id=USER, session_id=sid)
    for i, text in enumerate(texts):
        await service.append_event(session, said("user" if i % 2 == 0 else "bot", text))
    return session


def memory_for(store: Store) -> BaseMemoryService:
    return InMemoryMemoryService() if store.url is None else DatabaseMemoryService(store.url)


def runner_for(store: Store, memory: BaseMemoryService, service: BaseSessionService) -> Runner:
    agent = Agent(name="bot", model=ScriptedModel(responses=[]))
    return Runner(app_name=APP, agent=agent, session_service=service, memory_service=memory)


async def texts(memory: BaseMemoryService, query: str) -> list[str]:
    found = await memory.search_memory(app_name=APP, user_id=USER, query=query)
    return sorted(" ".join(p.text or "" for p in m.content.parts or []) for m in found.memories)


async def test_claim_close_moves_the_watermark_once_per_new_event(store: Store) -> None:
    service = store.service
    session = await session_with(service, "s", "one", "two")

    assert await service.claim_close(session) == 0
    assert await service.claim_close(session) is None

    await service.append_event(session, said("user", "three"))
    assert await service.claim_close(session) == 2
    assert await service.claim_close(session) is None


async def test_release_close_lets_the_next_close_retry(store: Store) -> None:
    service = store.service
    session = await session_with(service, "s", "one")

    assert await service.claim_close(session) == 0
    await service.release_close(session, 0)

    assert await service.claim_close(session) == 0


async def test_empty_or_deleted_sessions_have_nothing_to_close(store: Store) -> None:
    service = store.service
    empty = await session_with(service, "empty")
    gone = await session_with(service, "gone", "hello")
    await service.delete_session(app_name=APP, user_id=USER, session_id="gone")

    assert await service.claim_close(empty) is None
    assert await service.claim_close(gone) is None


async def test_concurrent_closes_from_two_replicas_claim_once(db_store: Store) -> None:
    first, second = db_store.service, db_store.replica()
    session = await session_with(first, "s", "one", "two")
    copies = [session.model_copy() for _ in range(6)]

    claims = await asyncio.gather(
        *[(first if i % 2 else second).claim_close(copy) for i, copy in enumerate(copies)]
    )

    assert sorted(claims, key=lambda c: c is None) == [0] + [None] * 5


async def test_unclosed_sessions_are_idle_not_yet_closed_and_of_the_given_apps(
    store: Store,
) -> None:
    service = store.service
    older = await session_with(service, "older", "a")
    await session_with(service, "newer", "b")
    await session_with(service, "empty")
    other = await service.create_session(app_name="other_app", user_id=USER, session_id="x")
    await service.append_event(other, said("user", "c"))
    cutoff = time.time() + 1

    listed = await service.list_unclosed_sessions(app_names=[APP], updated_before=cutoff, limit=10)
    assert listed == [(APP, USER, "older"), (APP, USER, "newer")]
    assert await service.list_unclosed_sessions(app_names=[APP], updated_before=0, limit=10) == []
    assert (
        len(await service.list_unclosed_sessions(app_names=[APP], updated_before=cutoff, limit=1))
        == 1
    )

    await service.claim_close(older)
    listed = await service.list_unclosed_sessions(app_names=[APP], updated_before=cutoff, limit=10)
    assert listed == [(APP, USER, "newer")]

    await service.append_event(older, said("user", "later"))
    listed = await service.list_unclosed_sessions(
        app_names=[APP], updated_before=time.time() + 1, limit=10
    )
    assert listed == [(APP, USER, "newer"), (APP, USER, "older")]


async def test_close_session_stores_each_event_once_and_not_forgotten_ones_again(
    store: Store,
) -> None:
    service = store.service
    memory = memory_for(store)
    runner = runner_for(store, memory, service)
    try:
        session = await session_with(service, "s", "my cat is Tom", "nice cat")
        assert await runner.close_session(session) is True
        assert await runner.close_session(session) is False
        assert await texts(memory, "cat") == ["my cat is Tom", "nice cat"]

        # Forgotten, then the conversation goes on: the next close adds only the new turn.
        assert await memory.delete_memory(app_name=APP, user_id=USER, session_id="s") == 2
        await service.append_event(session, said("user", "my cat is now called Felix"))
        await runner.close_session(session)
        assert await texts(memory, "cat") == ["my cat is now called Felix"]
    finally:
        await memory.close()


class _FailingMemory(InMemoryMemoryService):
    def __init__(self) -> None:
        super().__init__()
        self.fail = True

    async def add_session_to_memory(self, session: Session) -> None:
        if self.fail:
            raise RuntimeError("memory is down")
        await super().add_session_to_memory(session)


async def test_a_failed_close_is_retried_by_the_next_one(store: Store) -> None:
    service = store.service
    memory = _FailingMemory()
    runner = runner_for(store, memory, service)
    session = await session_with(service, "s", "the password is swordfish")

    with pytest.raises(RuntimeError, match="memory is down"):
        await runner.close_session(session)
    memory.fail = False
    await runner.close_session(session)

    assert await texts(memory, "password") == ["the password is swordfish"]
