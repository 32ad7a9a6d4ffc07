"""One suite for every session backend: memory, SQLite and Postgres must behave the same."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from google.genai import types
from sqlalchemy.ext.asyncio import create_async_engine

from app.cli import main
from app.errors import InvalidRequestError
from app.events import Event, EventActions
from app.sessions import (
    AlreadyExistsError,
    BaseSessionService,
    DatabaseSessionService,
    GetSessionConfig,
    Session,
    SessionNotFoundError,
    StaleSessionError,
)
from app.sessions.migration import current_revision, head_revision, is_at_head, upgrade

from .session_stores import DATABASE_BACKENDS, Store

APP = "app"
USER = "alice"


def user_event(text: str = "hi", **actions: Any) -> Event:
    """A user message carrying optional EventActions fields."""
    return Event(
        author="user",
        invocation_id="e-1",
        content=types.Content(role="user", parts=[types.Part(text=text)]),
        actions=EventActions(**actions),
    )


async def append_texts(
    service: BaseSessionService, session: Session, texts: list[str], start: float | None = None
) -> list[Event]:
    """Append one user event per text, 1 s apart from `start` when given."""
    events = []
    for i, text in enumerate(texts):
        event = user_event(text)
        if start is not None:
            event.timestamp = start + i
        events.append(await service.append_event(session, event))
    return events


async def reload(service: BaseSessionService, session: Session, **config: Any) -> Session:
    loaded = await service.get_session(
        app_name=session.app_name,
        user_id=session.user_id,
        session_id=session.id,
        config=GetSessionConfig(**config) if config else None,
    )
    assert loaded is not None
    return loaded


# --- create ---------------------------------------------------------------------------------


async def test_create_session_with_explicit_id(session_service: BaseSessionService) -> None:
    session = await session_service.create_session(
        app_name=APP, user_id=USER, session_id="s-1", state={"k": "v"}
    )
    assert (session.id, session.app_name, session.user_id) == ("s-1", APP, USER)
    assert session.state == {"k": "v"}
    assert session.events == []
    assert session.last_seq == 0
    assert session.last_update_time == pytest.approx(time.time(), abs=60)
    loaded = await reload(session_service, session)
    assert loaded.state == {"k": "v"}
    assert loaded.last_update_time == session.last_update_time


async def test_create_session_generates_an_id(session_service: BaseSessionService) -> None:
    first = await session_service.create_session(app_name=APP, user_id=USER)
    blank = await session_service.create_session(app_name=APP, user_id=USER, session_id="  ")
    assert first.id and blank.id.strip() and first.id != blank.id
    assert await reload(session_service, first)


@pytest.mark.parametrize("sid", ["a/b", ".", "..", "tab\tid", "x" * 129])
async def test_create_refuses_ids_unusable_in_a_url(
    session_service: BaseSessionService, sid: str
) -> None:
    with pytest.raises(InvalidRequestError, match="Invalid session id"):
        await session_service.create_session(app_name=APP, user_id=USER, session_id=sid)
    page = await session_service.list_sessions(app_name=APP, user_id=USER)
    assert page.sessions == []


async def test_create_duplicate_id_raises_already_exists(
    session_service: BaseSessionService,
) -> None:
    await session_service.create_session(
        app_name=APP, user_id=USER, session_id="dup", state={"app:a": 1}
    )
    with pytest.raises(AlreadyExistsError):
        await session_service.create_session(
            app_name=APP, user_id=USER, session_id="dup", state={"app:a": 2}
        )
    # The failed create changed nothing, not even the shared state it carried.
    other = await session_service.create_session(app_name=APP, user_id="bob")
    assert other.state == {"app:a": 1}


async def test_concurrent_creates_of_one_id_exactly_one_wins(store: Store) -> None:
    first, second = store.service, store.replica()
    for round_ in range(10):
        results = await asyncio.gather(
            first.create_session(app_name=APP, user_id=USER, session_id=f"race-{round_}"),
            second.create_session(app_name=APP, user_id=USER, session_id=f"race-{round_}"),
            return_exceptions=True,
        )
        created = [r for r in results if isinstance(r, Session)]
        refused = [r for r in results if isinstance(r, AlreadyExistsError)]
        assert (len(created), len(refused)) == (1, 1), results


async def test_create_drops_temp_keys(session_service: BaseSessionService) -> None:
    session = await session_service.create_session(
        app_name=APP, user_id=USER, state={"temp:scratch": 1, "kept": 2}
    )
    assert session.state == {"kept": 2}
    assert (await reload(session_service, session)).state == {"kept": 2}


async def test_app_and_user_keys_are_shared_by_their_scope(
    session_service: BaseSessionService,
) -> None:
    s1 = await session_service.create_session(
        app_name=APP, user_id=USER, state={"app:theme": "dark", "user:lang": "fr", "own": 1}
    )
    s2 = await session_service.create_session(app_name=APP, user_id=USER)
    bob = await session_service.create_session(app_name=APP, user_id="bob")
    other_app = await session_service.create_session(app_name="other", user_id=USER)
    assert s2.state == {"app:theme": "dark", "user:lang": "fr"}
    assert bob.state == {"app:theme": "dark"}
    assert other_app.state == {}

    # New shared keys merge into the scope; they don't replace its other keys.
    await session_service.create_session(
        app_name=APP, user_id="bob", state={"app:motd": "hello", "user:lang": "de"}
    )
    assert (await reload(session_service, s1)).state == {
        "app:theme": "dark",
        "app:motd": "hello",
        "user:lang": "fr",
        "own": 1,
    }
    assert (await reload(session_service, bob)).state == {
        "app:theme": "dark",
        "app:motd": "hello",
        "user:lang": "de",
    }

    # An event's shared keys reach the other sessions of the scope; session keys stay put.
    await session_service.append_event(
        s2, user_event(state_delta={"app:theme": "light", "user:tz": "CET", "mine": True})
    )
    assert (await reload(session_service, s1)).state == {
        "app:theme": "light",
        "app:motd": "hello",
        "user:lang": "fr",
        "user:tz": "CET",
        "own": 1,
    }
    assert (await reload(session_service, bob)).state == {
        "app:theme": "light",
        "app:motd": "hello",
        "user:lang": "de",
    }
    listed = await session_service.list_sessions(app_name=APP, user_id="bob")
    assert len(listed.sessions) == 2
    assert all(s.state["app:theme"] == "light" for s in listed.sessions)


# --- get ------------------------------------------------------------------------------------


async def test_get_session_selects_events(session_service: BaseSessionService) -> None:
    session = await session_service.create_session(app_name=APP, user_id=USER)
    await append_texts(session_service, session, ["a", "b", "c", "d", "e"], start=1000.0)

    def texts(s: Session) -> list[str]:
        return [e.text() for e in s.events]

    assert texts(await reload(session_service, session)) == ["a", "b", "c", "d", "e"]
    assert texts(await reload(session_service, session, num_recent_events=2)) == ["d", "e"]
    assert texts(await reload(session_service, session, num_recent_events=0)) == []
    assert texts(await reload(session_service, session, num_recent_events=9)) == list("abcde")
    assert texts(await reload(session_service, session, after_timestamp=1002.0)) == ["c", "d", "e"]
    assert texts(await reload(session_service, session, after_seq=3)) == ["d", "e"]
    assert texts(await reload(session_service, session, after_seq=5)) == []
    assert texts(await reload(session_service, session, after_seq=-4)) == list("abcde")
    assert texts(await reload(session_service, session, after_seq=10**30)) == []
    assert texts(await reload(session_service, session, num_recent_events=10**30)) == list("abcde")
    combined = await reload(
        session_service, session, after_seq=1, after_timestamp=1003.0, num_recent_events=1
    )
    assert texts(combined) == ["e"]
    assert texts(await reload(session_service, session, after_seq=1, num_recent_events=9)) == [
        "b",
        "c",
        "d",
        "e",
    ]
    # Narrow loads did not hide the rest from later full ones.
    full = await reload(session_service, session)
    assert [e.seq for e in full.events] == [1, 2, 3, 4, 5]
    assert full.last_seq == 5


async def test_get_missing_session_returns_none(session_service: BaseSessionService) -> None:
    session = await session_service.create_session(app_name=APP, user_id=USER, session_id="s")
    assert await session_service.get_session(app_name=APP, user_id=USER, session_id="x") is None
    assert await session_service.get_session(app_name=APP, user_id="bob", session_id="s") is None
    assert await session_service.get_session(app_name="b", user_id=USER, session_id="s") is None
    assert await reload(session_service, session)


async def test_two_users_may_use_the_same_session_id(session_service: BaseSessionService) -> None:
    alice = await session_service.create_session(
        app_name=APP, user_id=USER, session_id="same", state={"who": "alice"}
    )
    bob = await session_service.create_session(
        app_name=APP, user_id="bob", session_id="same", state={"who": "bob"}
    )
    await append_texts(session_service, alice, ["for alice"])
    assert [e.text() for e in (await reload(session_service, alice)).events] == ["for alice"]
    loaded_bob = await reload(session_service, bob)
    assert loaded_bob.events == [] and loaded_bob.state == {"who": "bob"}
    await session_service.delete_session(app_name=APP, user_id="bob", session_id="same")
    assert (await reload(session_service, alice)).state == {"who": "alice"}


async def test_returned_sessions_are_independent_copies(
    session_service: BaseSessionService,
) -> None:
    session = await session_service.create_session(app_name=APP, user_id=USER, state={"k": 1})
    await append_texts(session_service, session, ["a"])
    first = await reload(session_service, session)
    first.events.clear()
    first.state["k"] = 99
    second = await reload(session_service, session)
    assert len(second.events) == 1 and second.state == {"k": 1}


def _edit(event: Event) -> None:
    """Edit an event every way a caller might: nested content, actions, top-level fields."""
    assert event.content is not None and event.content.parts
    event.content.parts[0].text = "edited"
    event.content.parts.append(types.Part(text="appended"))
    event.actions.state_delta["k"] = "edited"
    event.author = "mallory"


async def _assert_untouched(service: BaseSessionService, session: Session) -> None:
    for loaded in (
        (await reload(service, session)).events,
        (
            await service.get_session_shared(app_name=APP, user_id=USER, session_id=session.id)
        ).events,  # type: ignore[union-attr]
        await service.list_events(app_name=APP, user_id=USER, session_id=session.id),
    ):
        [event] = loaded
        assert (event.author, event.text(), event.actions.state_delta) == ("user", "a", {"k": 1})
        assert event.to_json() == event.model_dump_json(by_alias=True, exclude_none=True)
    [raw] = await service.list_events_json(app_name=APP, user_id=USER, session_id=session.id)
    assert '"edited"' not in raw and "mallory" not in raw


async def test_editing_returned_events_changes_nothing_stored(
    session_service: BaseSessionService,
) -> None:
    session = await session_service.create_session(app_name=APP, user_id=USER)
    await session_service.append_event(session, user_event("a", state_delta={"k": 1}))
    await reload(session_service, session)  # cached now, on the stores that cache
    for returned in (
        (await reload(session_service, session)).events[0],
        (await session_service.list_events(app_name=APP, user_id=USER, session_id=session.id))[0],
        session.events[0].detached(),
    ):
        _edit(returned)
        await _assert_untouched(session_service, session)


async def test_get_session_copies_are_independent_of_each_other(
    session_service: BaseSessionService,
) -> None:
    session = await session_service.create_session(app_name=APP, user_id=USER)
    await session_service.append_event(session, user_event("a", state_delta={"k": 1}))
    first, second = await reload(session_service, session), await reload(session_service, session)
    assert first.events[0] is not second.events[0]
    assert first.events[0].content is not second.events[0].content
    _edit(first.events[0])
    assert second.events[0].text() == "a"


# --- list / delete --------------------------------------------------------------------------


async def test_list_sessions_newest_update_first_with_pages(
    session_service: BaseSessionService,
) -> None:
    ids = [f"s{i}" for i in range(5)]
    for sid in ids:
        await session_service.create_session(
            app_name=APP, user_id=USER, session_id=sid, state={"n": sid}
        )
    await session_service.create_session(app_name=APP, user_id="bob", session_id="b0")
    await session_service.create_session(app_name="other", user_id=USER, session_id="o0")
    # Touch sessions in a known order with increasing event timestamps.
    order = ["s3", "s0", "s4", "s1", "s2"]
    for i, sid in enumerate(order):
        session = await session_service.get_session(app_name=APP, user_id=USER, session_id=sid)
        assert session is not None
        event = user_event(sid)
        event.timestamp = 4_000_000_000.0 + i
        await session_service.append_event(session, event)

    seen: list[Session] = []
    token: str | None = None
    pages = 0
    while True:
        page = await session_service.list_sessions(
            app_name=APP, user_id=USER, page_size=2, page_token=token
        )
        pages += 1
        seen.extend(page.sessions)
        token = page.next_page_token
        if token is None:
            break
    assert pages == 3
    assert [s.id for s in seen] == list(reversed(order))
    assert all(s.events == [] for s in seen)
    assert {s.id: s.state["n"] for s in seen} == {sid: sid for sid in ids}
    assert all(s.last_seq == 1 and s.user_id == USER for s in seen)
    assert seen[0].last_update_time == 4_000_000_004.0

    everyone = await session_service.list_sessions(app_name=APP)
    assert [s.id for s in everyone.sessions][:5] == list(reversed(order))
    assert {(s.user_id, s.id) for s in everyone.sessions} == {(USER, i) for i in ids} | {
        ("bob", "b0")
    }
    assert everyone.next_page_token is None
    assert (await session_service.list_sessions(app_name="none")).sessions == []


async def test_list_sessions_ties_break_by_id_descending(
    session_service: BaseSessionService,
) -> None:
    for sid in ["b", "a", "c"]:
        session = await session_service.create_session(app_name=APP, user_id=USER, session_id=sid)
        event = user_event()
        event.timestamp = 4_100_000_000.0
        await session_service.append_event(session, event)
    first = await session_service.list_sessions(app_name=APP, user_id=USER, page_size=2)
    assert [s.id for s in first.sessions] == ["c", "b"]
    rest = await session_service.list_sessions(
        app_name=APP, user_id=USER, page_size=2, page_token=first.next_page_token
    )
    assert [s.id for s in rest.sessions] == ["a"] and rest.next_page_token is None


@pytest.mark.parametrize("token", ["not-a-token", "bm9wZQ", "W10", "!!"])
async def test_list_sessions_rejects_an_invalid_page_token(
    session_service: BaseSessionService, token: str
) -> None:
    with pytest.raises(InvalidRequestError):
        await session_service.list_sessions(app_name=APP, page_token=token)


async def test_delete_session_removes_it_and_its_events(store: Store) -> None:
    service, replica = store.service, store.replica()
    session = await service.create_session(app_name=APP, user_id=USER, session_id="gone")
    await append_texts(service, session, ["one", "two"])
    assert len((await reload(replica, session)).events) == 2  # cached by the replica too

    await service.delete_session(app_name=APP, user_id=USER, session_id="gone")
    for s in (service, replica):
        assert await s.get_session(app_name=APP, user_id=USER, session_id="gone") is None
        with pytest.raises(SessionNotFoundError):
            await s.list_events(app_name=APP, user_id=USER, session_id="gone")
    with pytest.raises(SessionNotFoundError):
        await service.append_event(session, user_event("late"))

    # Deleting again is a no-op, and a new session with the id starts empty.
    await service.delete_session(app_name=APP, user_id=USER, session_id="gone")
    again = await replica.create_session(app_name=APP, user_id=USER, session_id="gone")
    assert again.events == [] and again.last_seq == 0
    await append_texts(replica, again, ["fresh"])
    for s in (service, replica):
        loaded = await reload(s, again)
        assert [e.text() for e in loaded.events] == ["fresh"]
        assert [e.seq for e in loaded.events] == [1]


async def test_list_events_pages_by_seq_cursor(session_service: BaseSessionService) -> None:
    session = await session_service.create_session(app_name=APP, user_id=USER)
    await append_texts(session_service, session, list("abcdef"))

    async def page(after: int, limit: int | None = None) -> list[tuple[int | None, str]]:
        events = await session_service.list_events(
            app_name=APP, user_id=USER, session_id=session.id, after_seq=after, limit=limit
        )
        return [(e.seq, e.text()) for e in events]

    assert await page(0) == [(1, "a"), (2, "b"), (3, "c"), (4, "d"), (5, "e"), (6, "f")]
    assert await page(2, 2) == [(3, "c"), (4, "d")]
    assert await page(4, 10) == [(5, "e"), (6, "f")]
    assert await page(6) == []
    assert await page(0, 0) == []
    assert await page(10**30) == []
    assert await page(5, 10**30) == [(6, "f")]
    with pytest.raises(SessionNotFoundError):
        await session_service.list_events(app_name=APP, user_id="bob", session_id=session.id)


# --- append ---------------------------------------------------------------------------------


async def test_append_event_updates_the_session_object(
    session_service: BaseSessionService,
) -> None:
    session = await session_service.create_session(app_name=APP, user_id=USER, state={"a": 1})
    event = user_event(state_delta={"b": 2})
    event.timestamp = 4_200_000_000.5
    returned = await session_service.append_event(session, event)
    assert returned is event and event.seq == 1
    assert session.events == [event]
    assert session.state == {"a": 1, "b": 2}
    assert session.last_seq == 1
    assert session.last_update_time == 4_200_000_000.5
    loaded = await reload(session_service, session)
    assert loaded.state == {"a": 1, "b": 2}
    assert loaded.last_seq == 1 and loaded.last_update_time == 4_200_000_000.5
    second = await session_service.append_event(loaded, user_event("again"))
    assert second.seq == 2 and loaded.last_seq == 2


async def test_partial_events_are_returned_but_not_stored(
    session_service: BaseSessionService,
) -> None:
    session = await session_service.create_session(app_name=APP, user_id=USER)
    chunk = Event(author="agent", partial=True, content=types.Content(parts=[types.Part(text="x")]))
    assert await session_service.append_event(session, chunk) is chunk
    assert chunk.seq is None and session.events == [] and session.last_seq == 0
    loaded = await reload(session_service, session)
    assert loaded.events == [] and loaded.last_seq == 0


async def test_temp_keys_reach_the_live_session_but_are_never_stored(
    session_service: BaseSessionService,
) -> None:
    session = await session_service.create_session(app_name=APP, user_id=USER)
    event = user_event(state_delta={"temp:draft": "zzz", "kept": 1})
    await session_service.append_event(session, event)
    assert session.state == {"temp:draft": "zzz", "kept": 1}
    assert event.actions.state_delta == {"kept": 1}
    loaded = await reload(session_service, session)
    assert loaded.state == {"kept": 1}
    assert loaded.events[0].actions.state_delta == {"kept": 1}
    assert "temp:" not in loaded.events[0].to_json()


async def test_state_delta_sets_only_its_keys(session_service: BaseSessionService) -> None:
    session = await session_service.create_session(
        app_name=APP,
        user_id=USER,
        state={
            "keep": "k",
            "nested": {"x": 1, "y": 2},
            "app:cfg": {"a": 1},
            "app:other": "o",
            "user:prefs": {"p": 1},
        },
    )
    # Top-level replacement (never a deep merge), None stored as a value (never a delete).
    delta = {
        "nested": {"z": 3},
        "gone": None,
        "list": [1, {"n": None}],
        "app:cfg": {"b": None},
        "user:prefs": None,
    }
    await session_service.append_event(session, user_event(state_delta=dict(delta)))
    expected = {
        "keep": "k",
        "nested": {"z": 3},
        "gone": None,
        "list": [1, {"n": None}],
        "app:cfg": {"b": None},
        "app:other": "o",
        "user:prefs": None,
    }
    assert session.state == expected
    assert (await reload(session_service, session)).state == expected
    # Plain scalar updates keep the None-valued keys.
    await session_service.append_event(
        session, user_event(state_delta={"keep": "k2", "app:other": 2, "user:more": "m"})
    )
    expected.update({"keep": "k2", "app:other": 2, "user:more": "m"})
    assert (await reload(session_service, session)).state == expected


async def test_stale_snapshot_appends_exactly_one_wins(store: Store) -> None:
    first, second = store.service, store.replica()
    session = await first.create_session(app_name=APP, user_id=USER)
    for round_ in range(20):
        copy_a = await reload(first, session)
        copy_b = await reload(second, session)
        assert copy_a.last_seq == copy_b.last_seq == round_
        results = await asyncio.gather(
            first.append_event(copy_a, user_event(f"a{round_}", state_delta={"w": "a"})),
            second.append_event(copy_b, user_event(f"b{round_}", state_delta={"w": "b"})),
            return_exceptions=True,
        )
        won = [r for r in results if isinstance(r, Event)]
        lost = [r for r in results if isinstance(r, StaleSessionError)]
        assert (len(won), len(lost)) == (1, 1), results
        assert won[0].seq == round_ + 1
        loser = copy_b if won[0] in copy_a.events else copy_a
        assert loser.last_seq == round_ and not loser.events[round_:]
    final = await reload(second, session)
    assert [e.seq for e in final.events] == list(range(1, 21))
    assert final.state["w"] == final.events[-1].actions.state_delta["w"]
    # The same object, once stale, stays stale until reloaded.
    with pytest.raises(StaleSessionError):
        await first.append_event(session, user_event("stale"))


async def test_concurrent_sessions_lose_and_duplicate_nothing(store: Store) -> None:
    services = [store.service, store.replica()]
    sessions = [
        await services[0].create_session(app_name=APP, user_id=f"u{i}", session_id=f"c{i}")
        for i in range(50)
    ]

    async def writer(i: int, session: Session) -> None:
        service = services[i % 2]
        for n in range(4):
            await service.append_event(
                session, user_event(f"{session.id}-{n}", state_delta={"n": n})
            )

    await asyncio.gather(*(writer(i, s) for i, s in enumerate(sessions)))
    for i, session in enumerate(sessions):
        loaded = await reload(services[(i + 1) % 2], session)
        assert [(e.seq, e.text()) for e in loaded.events] == [
            (n + 1, f"{session.id}-{n}") for n in range(4)
        ]
        assert loaded.state == {"n": 3} and loaded.last_seq == 4


async def test_replica_sees_events_appended_elsewhere(store: Store) -> None:
    writer, reader = store.service, store.replica()
    session = await writer.create_session(app_name=APP, user_id=USER, state={"v": 0})
    await append_texts(writer, session, ["1", "2"])
    assert [e.text() for e in (await reload(reader, session)).events] == ["1", "2"]
    await writer.append_event(session, user_event("3", state_delta={"v": 3}))
    loaded = await reload(reader, session)
    assert [e.text() for e in loaded.events] == ["1", "2", "3"]
    assert loaded.state == {"v": 3} and loaded.last_seq == 3
    # The reader's copy is current again: it can append, and the writer's copy is now stale.
    await reader.append_event(loaded, user_event("4"))
    with pytest.raises(StaleSessionError):
        await writer.append_event(session, user_event("late"))
    assert [e.text() for e in (await reload(writer, session)).events] == ["1", "2", "3", "4"]


async def test_event_json_round_trips_unchanged(store: Store) -> None:
    service = store.service
    session = await service.create_session(app_name=APP, user_id=USER)
    call = Event(
        author="planner",
        invocation_id="e-42",
        branch="root.planner",
        content=types.Content(
            role="model",
            parts=[
                types.Part(text="Let me look.", thought=True),
                types.Part(
                    function_call=types.FunctionCall(
                        id="call-1", name="lookup", args={"city": "Zürich", "days": [1, 2]}
                    )
                ),
            ],
        ),
        long_running_tool_ids={"call-1"},
        usage_metadata=types.GenerateContentResponseUsageMetadata(prompt_token_count=7),
        custom_metadata={"trace": {"id": "t-1"}},
    )
    response = Event(
        author="planner",
        invocation_id="e-42",
        content=types.Content(
            role="user",
            parts=[
                types.Part(
                    function_response=types.FunctionResponse(
                        id="call-1", name="lookup", response={"result": None, "ok": True}
                    )
                ),
                types.Part(
                    inline_data=types.Blob(mime_type="image/png", data=bytes(range(256)) * 3)
                ),
            ],
        ),
        actions=EventActions(
            state_delta={"weather": {"temp": 21.5}},
            artifact_delta={"report.png": 2},
            transfer_to_agent="writer",
            escalate=True,
            skip_summarization=True,
            requested_auth_configs={"call-1": {"scheme": "oauth2"}},
        ),
    )
    await service.append_event(session, call)
    await service.append_event(session, response)
    fresh = store.replica(cache_size=0) if store.url else service
    loaded = await reload(fresh, session)
    listed = await fresh.list_events(app_name=APP, user_id=USER, session_id=session.id)
    for original, stored, paged in zip([call, response], loaded.events, listed, strict=True):
        assert stored.to_json() == original.to_json() == paged.to_json()
        assert stored == original
    assert loaded.events[1].content.parts[1].inline_data.data == bytes(range(256)) * 3


# --- backend details only a database has ----------------------------------------------------


async def test_cache_disabled_behaves_the_same(db_store: Store) -> None:
    service = db_store.replica(cache_size=0)
    session = await service.create_session(app_name=APP, user_id=USER, state={"a": 1})
    await append_texts(service, session, ["x", "y", "z"])
    loaded = await reload(service, session, num_recent_events=2)
    assert [e.text() for e in loaded.events] == ["y", "z"] and loaded.state == {"a": 1}
    await service.append_event(loaded, user_event("w"))
    assert [e.seq for e in (await reload(service, session)).events] == [1, 2, 3, 4]


async def test_lru_cache_keeps_at_most_cache_size_sessions(db_store: Store) -> None:
    service = db_store.replica(cache_size=2)
    created = [await service.create_session(app_name=APP, user_id=USER) for _ in range(4)]
    for session in created:
        await append_texts(service, session, ["m"])
    cache = service._cache  # type: ignore[attr-defined]
    assert len(cache) == 2
    for session in created:  # evicted sessions still load in full
        assert [e.text() for e in (await reload(service, session)).events] == ["m"]


# --- migrations and `agent-service migrate` -------------------------------------------------


@pytest.fixture(params=DATABASE_BACKENDS)
def empty_db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """URL of a database with no tables yet, on each database backend."""
    if request.param == "postgres":
        url: str = request.getfixturevalue("pg_empty_db_url")
        return url
    return f"sqlite+aiosqlite:///{tmp_path / 'not' / 'yet' / 'there.db'}"


async def _schema(url: str) -> dict[str, list[str]]:
    """Return table -> sorted column and index names, as the database reports them."""
    engine = create_async_engine(url)
    try:
        async with engine.connect() as conn:

            def inspect_all(sync_conn: sa.Connection) -> dict[str, list[str]]:
                inspector = sa.inspect(sync_conn)
                return {
                    table: sorted(
                        [c["name"] for c in inspector.get_columns(table)]
                        + [str(i["name"]) for i in inspector.get_indexes(table)]
                    )
                    for table in inspector.get_table_names()
                }

            return await conn.run_sync(inspect_all)
    finally:
        await engine.dispose()


async def test_migrations_build_the_schema_and_rerun_as_a_noop(empty_db_url: str) -> None:
    assert await current_revision(empty_db_url) is None
    assert not await is_at_head(empty_db_url)

    await upgrade(empty_db_url)
    assert await current_revision(empty_db_url) == head_revision()
    assert await is_at_head(empty_db_url)
    schema = await _schema(empty_db_url)
    assert {"sessions", "events", "app_states", "user_states"} <= set(schema)

    service = DatabaseSessionService(empty_db_url)
    try:
        session = await service.create_session(app_name=APP, user_id=USER, state={"k": 1})
        await append_texts(service, session, ["kept"])
        await upgrade(empty_db_url)  # again: nothing changes, data included
        assert await _schema(empty_db_url) == schema
        loaded = await reload(service, session)
        assert [e.text() for e in loaded.events] == ["kept"] and loaded.state == {"k": 1}
    finally:
        await service.close()


def test_migrate_check_reports_pending_migrations(
    empty_db_url: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    assert main(["migrate", "--check", "--database-url", empty_db_url]) == 1
    assert "run `agent-service migrate`" in capsys.readouterr().err

    monkeypatch.setenv("AGENT_SERVICE_DATABASE_URL", empty_db_url)
    assert main(["migrate"]) == 0
    assert "migrated" in capsys.readouterr().out
    assert main(["migrate", "--check"]) == 0
    assert main(["migrate", "--check", "--database-url", empty_db_url]) == 0
    assert main(["migrate"]) == 0  # re-running is a no-op
    assert "at head" in capsys.readouterr().out
