"""InMemoryMemoryService: word-match recall over remembered sessions."""

from __future__ import annotations

import pytest
from google.genai import types

from app.events import Event
from app.memory import InMemoryMemoryService, SearchMemoryResponse
from app.sessions import Session


def said(author: str, text: str, timestamp: float = 1_700_000_000.0) -> Event:
    role = "user" if author == "user" else "model"
    return Event(
        author=author,
        timestamp=timestamp,
        content=types.Content(role=role, parts=[types.Part(text=text)]),
    )


def session(*events: Event, sid: str = "s1", app: str = "app", user: str = "u1") -> Session:
    return Session(id=sid, app_name=app, user_id=user, events=list(events))


def texts(response: SearchMemoryResponse) -> list[str]:
    return ["".join(p.text or "" for p in m.content.parts or []) for m in response.memories]


@pytest.fixture
def memory() -> InMemoryMemoryService:
    return InMemoryMemoryService()


async def test_search_ranks_events_by_how_many_query_words_they_share(
    memory: InMemoryMemoryService,
) -> None:
    await memory.add_session_to_memory(
        session(
            said("user", "I like green tea", timestamp=3.0),
            said("user", "My favourite tea is green tea from Kyoto", timestamp=1.0),
            said("assistant", "Noted, tea it is", timestamp=2.0),
            said("user", "The weather is nice", timestamp=4.0),
        )
    )

    found = await memory.search_memory(app_name="app", user_id="u1", query="Kyoto green tea")

    assert texts(found) == [
        "My favourite tea is green tea from Kyoto",
        "I like green tea",
        "Noted, tea it is",
    ]


async def test_search_is_case_insensitive_and_ignores_punctuation(
    memory: InMemoryMemoryService,
) -> None:
    await memory.add_session_to_memory(session(said("user", "Paris, in SPRING!")))

    found = await memory.search_memory(app_name="app", user_id="u1", query="spring? paris")

    assert texts(found) == ["Paris, in SPRING!"]


async def test_memory_entries_carry_author_time_and_event_id(
    memory: InMemoryMemoryService,
) -> None:
    event = said("assistant", "The code is 1234", timestamp=0.0)
    await memory.add_session_to_memory(session(event))

    (entry,) = (await memory.search_memory(app_name="app", user_id="u1", query="code")).memories

    assert entry.author == "assistant"
    assert entry.id == event.id
    assert entry.timestamp is not None and entry.timestamp.startswith("1970-01-01T00:00:00")


async def test_search_without_shared_words_finds_nothing(memory: InMemoryMemoryService) -> None:
    await memory.add_session_to_memory(session(said("user", "hello there")))

    found = await memory.search_memory(app_name="app", user_id="u1", query="goodbye")

    assert found.memories == []


@pytest.mark.parametrize("query", ["", "   ", "?!"])
async def test_empty_query_finds_no_memories(memory: InMemoryMemoryService, query: str) -> None:
    await memory.add_session_to_memory(session(said("user", "hello there")))

    found = await memory.search_memory(app_name="app", user_id="u1", query=query)

    assert found.memories == []


async def test_search_is_scoped_to_app_and_user(memory: InMemoryMemoryService) -> None:
    await memory.add_session_to_memory(session(said("user", "secret alpha"), user="u1"))
    await memory.add_session_to_memory(session(said("user", "secret beta"), user="u2"))
    await memory.add_session_to_memory(session(said("user", "secret gamma"), app="other"))

    assert texts(await memory.search_memory(app_name="app", user_id="u1", query="secret")) == [
        "secret alpha"
    ]
    assert texts(await memory.search_memory(app_name="app", user_id="u2", query="secret")) == [
        "secret beta"
    ]
    assert texts(await memory.search_memory(app_name="other", user_id="u1", query="secret")) == [
        "secret gamma"
    ]
    assert (await memory.search_memory(app_name="app", user_id="u3", query="secret")).memories == []


async def test_search_spans_the_users_sessions(memory: InMemoryMemoryService) -> None:
    await memory.add_session_to_memory(session(said("user", "blue car"), sid="s1"))
    await memory.add_session_to_memory(session(said("user", "blue boat"), sid="s2"))

    found = await memory.search_memory(app_name="app", user_id="u1", query="blue")

    assert sorted(texts(found)) == ["blue boat", "blue car"]


async def test_re_adding_a_session_adds_only_its_new_events(
    memory: InMemoryMemoryService,
) -> None:
    first = said("user", "planning a trip to Rome")
    await memory.add_session_to_memory(session(first))
    await memory.add_session_to_memory(
        session(first, said("user", "actually the trip is to Lisbon"))
    )

    trip = await memory.search_memory(app_name="app", user_id="u1", query="trip")

    assert sorted(texts(trip)) == ["actually the trip is to Lisbon", "planning a trip to Rome"]

    # A later copy holding only newer events (as a close sends them) keeps the earlier ones.
    await memory.add_session_to_memory(session(said("user", "never mind the trip")))

    trip = await memory.search_memory(app_name="app", user_id="u1", query="trip")
    assert len(trip.memories) == 3


async def test_events_without_text_are_not_remembered(memory: InMemoryMemoryService) -> None:
    call = Event(
        author="assistant",
        content=types.Content(
            role="model",
            parts=[types.Part(function_call=types.FunctionCall(name="lookup", args={"q": "x"}))],
        ),
    )
    await memory.add_session_to_memory(session(call, Event(author="assistant")))

    assert (await memory.search_memory(app_name="app", user_id="u1", query="lookup")).memories == []
