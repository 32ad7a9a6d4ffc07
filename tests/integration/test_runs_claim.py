"""A run takes its session with the user event's append (Postgres), and its end notifies the
other replicas only when one of them waits for it."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator

import asyncpg
import pytest
from google.genai import types

from app.agents import LlmAgent
from app.errors import RunInProgressError, RunLostError
from app.events import Event
from app.runners import Runner
from app.runs import (
    ActiveRun,
    LocalNotifier,
    MultitaskStrategy,
    RunManager,
    RunStatus,
    SqlRunStore,
)
from app.runs.notify import CHANNEL, PostgresNotifier
from app.sessions import DatabaseSessionService, Session
from app.sessions.fence import SessionClaim, current_fence, fenced
from app.testing import ScriptedModel
from tests.conftest import asyncpg_dsn

pytestmark = pytest.mark.postgres

APP, USER, SID = "app", "alice", "s"
KEY = (APP, USER, SID)


@pytest.fixture
async def service(pg_db_url: str) -> AsyncIterator[DatabaseSessionService]:
    svc = DatabaseSessionService(pg_db_url, pool_pre_ping=False)
    await svc.create_session(app_name=APP, user_id=USER, session_id=SID)
    try:
        yield svc
    finally:
        await svc.close()


@pytest.fixture
async def manager(service: DatabaseSessionService) -> AsyncIterator[RunManager]:
    """A replica's runs layer (no notifications: nothing else listens)."""
    runs = RunManager(SqlRunStore(service), LocalNotifier(), lambda _app: _runner(service))
    try:
        yield runs
    finally:
        await runs.store.close()


def _runner(service: DatabaseSessionService) -> Runner:
    agent = LlmAgent(name="agent", model=ScriptedModel(["unused"]))
    return Runner(app_name=APP, agent=agent, session_service=service)


def _user(invocation_id: str, text: str = "hi") -> Event:
    content = types.Content(role="user", parts=[types.Part(text=text)])
    return Event(invocation_id=invocation_id, author="user", content=content)


async def _run_rows(service: DatabaseSessionService) -> list[tuple[str, str, int | None]]:
    async with service.engine.connect() as conn:
        rows = await conn.exec_driver_sql(
            "SELECT invocation_id, status, fence FROM runs ORDER BY create_time"
        )
        return [tuple(row) for row in rows.all()]


async def test_the_user_event_append_takes_the_session(service: DatabaseSessionService) -> None:
    session = await service.get_session(app_name=APP, user_id=USER, session_id=SID)
    assert session is not None
    claim = SessionClaim("e-1", "replica-a", 10.0)
    with fenced(claim):
        assert current_fence() is None  # pending: nothing taken yet
        stored = await service.append_event(session, _user("e-1"))
        assert claim.fence is not None and not claim.pending
        assert current_fence() == claim.fence
        # The run's next appends are fenced with the token it got.
        await service.append_event(session, Event(invocation_id="e-1", author="agent"))

    assert stored.seq == 1
    assert await _run_rows(service) == [("e-1", "running", claim.fence)]
    async with service.engine.connect() as conn:
        fence = (await conn.exec_driver_sql("SELECT fence FROM sessions")).scalar_one()
    assert fence == claim.fence


async def test_a_claim_on_a_held_session_stores_nothing(service: DatabaseSessionService) -> None:
    first = await service.get_session(app_name=APP, user_id=USER, session_id=SID)
    second = await service.get_session(app_name=APP, user_id=USER, session_id=SID)
    assert first is not None and second is not None
    with fenced(SessionClaim("e-1", "replica-a", 10.0)):
        await service.append_event(first, _user("e-1"))

    # Loaded before the first run stored its event: stale, and the session is held.
    late = SessionClaim("e-2", "replica-b", 10.0)
    with fenced(late), pytest.raises(RunInProgressError):
        await service.append_event(second, _user("e-2", "me too"))
    assert late.pending

    # Loaded after: the seq matches, but the running run's row refuses the second one.
    fresh = await service.get_session(app_name=APP, user_id=USER, session_id=SID)
    assert fresh is not None
    with fenced(late), pytest.raises(RunInProgressError):
        await service.append_event(fresh, _user("e-2", "me too"))
    assert late.pending

    stored = await service.get_session(app_name=APP, user_id=USER, session_id=SID)
    assert stored is not None
    assert [e.invocation_id for e in stored.events] == ["e-1"]
    assert [row[:2] for row in await _run_rows(service)] == [("e-1", "running")]


async def test_concurrent_claims_take_the_session_once(service: DatabaseSessionService) -> None:
    async def attempt(n: int) -> bool:
        session = await service.get_session(app_name=APP, user_id=USER, session_id=SID)
        assert session is not None
        with fenced(SessionClaim(f"e-{n}", "replica", 10.0)):
            try:
                await service.append_event(session, _user(f"e-{n}"))
            except RunInProgressError:
                return False
        return True

    results = await asyncio.gather(*(attempt(n) for n in range(20)))
    assert results.count(True) == 1
    stored = await service.get_session(app_name=APP, user_id=USER, session_id=SID)
    assert stored is not None and len(stored.events) == 1
    assert len(await _run_rows(service)) == 1


async def test_a_run_that_never_appended_leaves_no_row(manager: RunManager) -> None:
    run = await manager.begin(KEY, "e-1", on_first_append=True)
    assert run.claim.pending and manager.active == [run]
    assert await manager.answer_open_calls(run, {"error": "cancelled"}) == 0
    await manager.finish(run, RunStatus.CANCELLED)
    assert manager.active == []
    assert await manager.list_runs(KEY, status=None, limit=10, before=None) == []
    # The session is free: an explicit take works at once.
    taken = await manager.begin(KEY, "e-2")
    assert taken.fence is not None
    await manager.finish(taken, RunStatus.COMPLETED)


async def test_an_enqueued_or_interrupting_run_takes_the_session_up_front(
    manager: RunManager,
) -> None:
    for strategy in (MultitaskStrategy.ENQUEUE, MultitaskStrategy.INTERRUPT):
        run = await manager.begin(KEY, f"e-{strategy}", strategy=strategy, on_first_append=True)
        assert run.fence is not None
        await manager.finish(run, RunStatus.COMPLETED)


class _Listener:
    """A plain LISTEN on the runs channel, as another replica's notifier would hold."""

    def __init__(self) -> None:
        self.payloads: list[list[str]] = []

    def __call__(self, _conn: object, _pid: int, _channel: str, payload: str) -> None:
        self.payloads.append(json.loads(payload)[1:])

    async def quiet(self) -> list[list[str]]:
        await asyncio.sleep(0.3)  # notifications are delivered asynchronously
        return self.payloads


async def test_a_run_end_is_announced_only_when_someone_waits(
    service: DatabaseSessionService, pg_db_url: str
) -> None:
    listener = _Listener()
    conn = await asyncpg.connect(asyncpg_dsn(pg_db_url))
    await conn.add_listener(CHANNEL, listener)
    notifier = PostgresNotifier(service.engine.url)
    manager = RunManager(SqlRunStore(service), notifier, lambda _app: _runner(service))
    await manager.start()
    try:
        # Nobody waits: the end is stored, and no replica is woken.
        run = await manager.begin(KEY, "e-1")
        await manager.finish(run, RunStatus.COMPLETED)
        assert await listener.quiet() == []

        # Another replica follows it: announced.
        run = await manager.begin(KEY, "e-2")
        run.remote_watchers = True
        await manager.finish(run, RunStatus.COMPLETED)
        assert await listener.quiet() == [["end", APP, USER, SID, "e-2"]]
        listener.payloads.clear()

        # A run is queued behind it (whichever replica's): announced.
        run = await manager.begin(KEY, "e-3")
        await SqlRunStore(service).enqueue(KEY, "e-4", {"newMessage": None})
        await manager.finish(run, RunStatus.COMPLETED)
        assert await listener.quiet() == [["end", APP, USER, SID, "e-3"]]
        record = await manager.get(KEY, "e-3")
        assert record.status is RunStatus.COMPLETED
    finally:
        await manager.close()
        await conn.close()


async def test_a_watch_for_a_queued_run_reaches_the_replica_that_takes_it(
    manager: RunManager,
) -> None:
    # Another replica follows e-2 while it is queued: there is no owner yet to tell.
    manager._on_signal(("watch", APP, USER, SID, "e-2"))
    first = await manager.begin(KEY, "e-1")
    assert not first.remote_watchers
    await manager.finish(first, RunStatus.COMPLETED)
    second = await manager.begin(KEY, "e-2")
    assert second.remote_watchers  # so its events and end are announced
    await manager.finish(second, RunStatus.COMPLETED)


async def test_leases_run_on_the_database_clock(manager: RunManager) -> None:
    store = manager.store
    run = await manager.begin(KEY, "e-1")
    # A sweeper whose own clock runs an hour ahead still sees a live lease.
    assert await store.expired(time.time() + 3600) == []
    [record] = await manager.list_runs(KEY, status=RunStatus.RUNNING, limit=1, before=None)
    assert await store.take_over(record, owner="other", lease_seconds=10) is None
    # A replica whose clock runs behind renews to the database's now + lease, not its own.
    await store.renew(manager.replica_id, ["e-1"], 0.0)
    await asyncio.sleep(0.05)
    [expired] = await store.expired(time.time() - 3600)
    assert expired.invocation_id == "e-1"
    await manager.finish(run, RunStatus.COMPLETED)


def _answer(invocation_id: str, text: str = "hello") -> Event:
    content = types.Content(role="model", parts=[types.Part(text=text)])
    return Event(invocation_id=invocation_id, author="agent", content=content)


async def _stored_seqs(service: DatabaseSessionService) -> list[int]:
    async with service.engine.connect() as conn:
        rows = await conn.exec_driver_sql("SELECT seq FROM events ORDER BY seq")
        return [row[0] for row in rows.all()]


async def _answered(
    manager: RunManager, service: DatabaseSessionService
) -> tuple[ActiveRun, Session, Event]:
    """A run of the root agent "agent" that stored the user's message and answered (held)."""
    session = await service.get_session(app_name=APP, user_id=USER, session_id=SID)
    assert session is not None
    run = await manager.begin(KEY, "e-1", on_first_append=True)
    run.claim.defer_author = "agent"
    with fenced(run.claim):
        await service.append_event(session, _user("e-1"))
        answer = await service.append_event(session, _answer("e-1"))
    return run, session, answer


async def test_the_last_event_and_the_run_end_are_one_write(
    manager: RunManager, service: DatabaseSessionService
) -> None:
    run, session, answer = await _answered(manager, service)
    # Applied to the run's session, numbered, but held back until the run ends.
    assert answer.seq == 2 and session.events[-1] is answer and session.last_seq == 2
    assert run.claim.held is not None
    assert await _stored_seqs(service) == [1]

    await manager.finish(run, RunStatus.COMPLETED)
    assert await _stored_seqs(service) == [1, 2]
    record = await manager.get(KEY, "e-1")
    assert record.status is RunStatus.COMPLETED and record.last_seq == 2
    assert run.claim.held is None


async def test_a_held_event_is_written_before_the_next_one(
    manager: RunManager, service: DatabaseSessionService
) -> None:
    run, session, _ = await _answered(manager, service)
    assert await _stored_seqs(service) == [1]
    with fenced(run.claim):
        # Not the last one after all (a callback added another): both stored, in order.
        await service.append_event(session, Event(invocation_id="e-1", author="other"))
    assert await _stored_seqs(service) == [1, 2, 3]
    await manager.finish(run, RunStatus.CANCELLED)
    record = await manager.get(KEY, "e-1")
    assert record.status is RunStatus.CANCELLED
    stored = await service.get_session(app_name=APP, user_id=USER, session_id=SID)
    assert [e.author for e in stored.events] == ["user", "agent", "other"]


async def test_a_held_event_refused_at_the_end_is_dropped(
    manager: RunManager, service: DatabaseSessionService
) -> None:
    run, _, _ = await _answered(manager, service)
    # Another replica sealed the run meanwhile (it took the session with a new token).
    [record] = await manager.list_runs(KEY, status=RunStatus.RUNNING, limit=1, before=None)
    async with service.engine.begin() as conn:
        await conn.exec_driver_sql("UPDATE runs SET lease_expires = 0")
    assert await manager.store.take_over(record, owner="other", lease_seconds=10) is not None
    with pytest.raises(RunLostError):
        await manager.finish(run, RunStatus.COMPLETED)
    assert run.claim.held is None
    assert await _stored_seqs(service) == [1]
    await manager.finish(run, RunStatus.ERROR, error={"code": "run_lost"})  # a no-op now
    assert (await manager.get(KEY, "e-1")).owner == "other"
