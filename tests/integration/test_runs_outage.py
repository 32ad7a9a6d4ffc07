"""A Postgres outage during a run: the run's end is stored as soon as the database answers
again, with the calls it left open answered, and the session takes new runs."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator

import pytest
from google.genai import types

from app.agents import LlmAgent
from app.events import Event
from app.runners import Runner
from app.runs import LocalNotifier, RunManager, RunStatus, SqlRunStore
from app.sessions import DatabaseSessionService
from app.sessions.fence import fenced
from app.sessions.migration import upgrade
from app.testing import ScriptedModel
from app.testing.postgres import PostgresCluster, find_bin_dir

pytestmark = pytest.mark.postgres

APP, USER, SID = "app", "alice", "s"


@pytest.fixture
def own_cluster() -> Iterator[PostgresCluster]:
    """A throwaway Postgres for this test alone: it will be stopped and started again."""
    if find_bin_dir() is None:
        pytest.skip("needs local PostgreSQL server binaries (initdb, pg_ctl) to restart a server")
    cluster = PostgresCluster.start_new()
    try:
        yield cluster
    finally:
        cluster.destroy()


def _call() -> Event:
    call = types.FunctionCall(id="call-1", name="lookup", args={})
    content = types.Content(role="model", parts=[types.Part(function_call=call)])
    return Event(invocation_id="e-1", author="agent", content=content)


async def test_a_run_ended_during_an_outage_is_sealed_when_the_database_returns(
    own_cluster: PostgresCluster,
) -> None:
    url = own_cluster.url()
    await upgrade(url)
    service = DatabaseSessionService(url)
    agent = LlmAgent(name="agent", model=ScriptedModel(["unused"]))
    runner = Runner(app_name=APP, agent=agent, session_service=service)
    manager = RunManager(SqlRunStore(service), LocalNotifier(), lambda _app: runner)
    try:
        session = await service.create_session(app_name=APP, user_id=USER, session_id=SID)
        run = await manager.begin((APP, USER, SID), "e-1")
        with fenced(run.claim):
            await service.append_event(session, _call())  # the tool call is stored

        await asyncio.to_thread(own_cluster.stop, "fast")
        # The run fails in-band (its append raised); its end cannot be stored yet.
        await manager.finish(run, RunStatus.ERROR, error={"code": "database_unavailable"})
        assert manager.active == []

        await asyncio.to_thread(own_cluster.start)
        for _ in range(3):  # the first call after a restart may meet a dead pooled connection
            try:
                await manager.tick()
                break
            except Exception:
                continue

        record = await manager.get((APP, USER, SID), "e-1")
        assert record.status is RunStatus.ERROR
        assert record.error == {"code": "database_unavailable"}
        loaded = await service.get_session(app_name=APP, user_id=USER, session_id=SID)
        assert loaded is not None
        [reply] = loaded.events[-1].get_function_responses()
        assert reply.id == "call-1" and reply.response == {"error": "cancelled"}
        next_run = await manager.begin((APP, USER, SID), "e-2")
        await manager.finish(next_run, RunStatus.COMPLETED)
    finally:
        await manager.close()
        await runner.close()
        await service.close()
