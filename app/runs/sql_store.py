"""SqlRunStore: runs in the `runs` table of the session database (Postgres or SQLite).

One running invocation per session is the partial unique index `ux_runs_one_running`; taking
the session bumps `sessions.fence` in the same statement (Postgres) or transaction (SQLite),
so a run that lost the session can no longer append (see `app.sessions.fence`).
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any, ClassVar

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncConnection

from app.errors import (
    AgentServiceError,
    DatabaseUnavailableError,
    RunInProgressError,
    SessionNotFoundError,
)
from app.runs._tables import events, runs, sessions
from app.runs.record import RunRecord, RunStatus, SessionKey, decode_json
from app.runs.store import Cursor, RunStore
from app.sessions import DatabaseSessionService
from app.sessions._engine import create_engine, transaction_engine
from app.sessions._sql import pg_notify_run_end
from app.sessions.fence import SessionClaim

_RUNNING = RunStatus.RUNNING.value

UPKEEP_CONNECTIONS = 2
"""Connections of the lease upkeep's own pool (Postgres): renewal, and the sweep."""

# Postgres: take the session and record the run in one statement. The UPDATE locks the
# session row, so concurrent begins on one session queue here; the second one's INSERT then
# violates ux_runs_one_running and the whole statement (fence bump included) rolls back. A
# resumed invocation (same id) reuses its row. Raw asyncpg ($n parameters): it runs per run.
_PG_BEGIN_RAW = """
WITH f AS (
  UPDATE sessions SET fence = fence + 1
   WHERE app_name = $1 AND user_id = $2 AND id = $3
  RETURNING fence)
INSERT INTO runs (app_name, user_id, session_id, invocation_id, status, owner, lease_expires,
                  fence, create_time, start_time, cancel_requested)
SELECT $1, $2, $3, $4, 'running', $5, extract(epoch FROM clock_timestamp()) + $6::float8,
       f.fence, $7::float8, $7::float8, false
  FROM f
ON CONFLICT (app_name, user_id, session_id, invocation_id) DO UPDATE
   SET status = 'running', owner = excluded.owner, lease_expires = excluded.lease_expires,
       fence = excluded.fence, start_time = excluded.start_time, end_time = NULL,
       error = NULL, cancel_requested = false, request = NULL
RETURNING fence, create_time
"""

# Queue a run. The session row's lock orders concurrent enqueues on one session, and the
# database clock read under it makes `create_time` (the queue's order) the commit order: a run
# that found itself at the head of the queue cannot see an older one committed after it.
_PG_ENQUEUE_RAW = """
WITH s AS (
  SELECT 1 FROM sessions WHERE app_name = $1 AND user_id = $2 AND id = $3 FOR UPDATE)
INSERT INTO runs (app_name, user_id, session_id, invocation_id, status, create_time,
                  cancel_requested, request)
SELECT $1, $2, $3, $4, 'queued', extract(epoch FROM clock_timestamp())::float8, false, $5
  FROM s
RETURNING 1
"""

# $5 status, $6 end time, $7 error JSON, $8 last seq (NULL: keep), $9 fence; with `announce`,
# $10 the channel and $11 the origin of a NOTIFY sent when it ended the run and either $12
# (watched from another replica) or the session has queued runs (`pg_notify_run_end`): a
# NOTIFY wakes every replica's listener, and most runs end with nobody waiting. A run queued after
# this statement's snapshot is not seen here; it then tries to take the session itself, two
# round trips after enqueueing, so (but for a stall of microseconds at the wrong moment) after
# this statement locked the run's row: it waits for the lock and finds the session free. In
# that stall it waits out the lease, the safety net of every wait for a run's end.
_PG_FINISH_UPDATE = """
WITH u AS (
  UPDATE runs
     SET status = $5, end_time = $6::float8, error = $7, last_seq = COALESCE($8::int8, last_seq),
         owner = NULL, lease_expires = NULL, request = NULL
   WHERE app_name = $1 AND user_id = $2 AND session_id = $3 AND invocation_id = $4
     AND status = 'running' AND fence = $9::int8
  RETURNING 1)
"""
_PG_FINISH = _PG_FINISH_UPDATE + "SELECT count(*) FROM u"
_PG_FINISH_ANNOUNCED = (
    _PG_FINISH_UPDATE
    + "SELECT (SELECT count(*) FROM u), "
    + pg_notify_run_end("u", "$10", "$11", "$4", "$12")
)

_PG_SEAL_FENCE = sa.text(
    """
UPDATE sessions SET fence = fence + 1
 WHERE app_name = :app AND user_id = :user AND id = :sid
RETURNING fence
"""
)


class SqlRunStore(RunStore):
    """Runs in the database of a `DatabaseSessionService` (same engine and pool)."""

    TABLES: ClassVar[tuple[str, ...]] = (runs.name,)
    """The tables this store adds to the sessions' (for readiness checks)."""

    def __init__(self, sessions_service: DatabaseSessionService) -> None:
        self._service = sessions_service
        self._engine = sessions_service.engine
        self._tx_engine = sessions_service.write_engine
        self._postgres = self._engine.dialect.name == "postgresql"
        self.announces_inline = self._postgres
        self.claims_on_append = sessions_service.claims_on_append
        self._unique_violation: type[Exception] = sa_exc.IntegrityError
        self._upkeep_engine = self._engine
        if self._postgres:
            import asyncpg

            self._unique_violation = asyncpg.UniqueViolationError
            # Lease upkeep has its own connections: behind a saturated request pool a renewal
            # would wait for a connection (up to the pool timeout, longer than a lease) and
            # another replica would seal a run that is alive and well.
            self._upkeep_engine = create_engine(
                self._engine.url,
                pool_size=UPKEEP_CONNECTIONS,
                max_overflow=0,
                pool_pre_ping=True,  # one round trip per lease third; survives a restart
                connect_args={"server_settings": {"application_name": "agent-service-runs"}},
            )
        self._upkeep_tx_engine = transaction_engine(self._upkeep_engine)

    @asynccontextmanager
    async def _read(self) -> AsyncIterator[AsyncConnection]:
        async with self._service.database_errors(), self._engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def _write(self) -> AsyncIterator[AsyncConnection]:
        async with self._service.database_errors(), self._tx_engine.begin() as conn:
            yield conn

    @asynccontextmanager
    async def _upkeep_read(self) -> AsyncIterator[AsyncConnection]:
        async with self._service.database_errors(), self._upkeep_engine.connect() as conn:
            yield conn

    @asynccontextmanager
    async def _upkeep_write(self) -> AsyncIterator[AsyncConnection]:
        async with self._service.database_errors(), self._upkeep_tx_engine.begin() as conn:
            yield conn

    async def close(self) -> None:
        """Close the lease upkeep's connections."""
        if self._upkeep_engine is not self._engine:
            await self._upkeep_engine.dispose()

    def _single_write(self) -> Any:
        """A connection for one writing statement: autocommit on Postgres, else a transaction."""
        return self._read() if self._postgres else self._write()

    async def begin(
        self, key: SessionKey, invocation_id: str, *, owner: str, lease_seconds: float
    ) -> RunRecord:
        """See `RunStore.begin`."""
        now = time.time()
        params = {**_key(key), "inv": invocation_id, "owner": owner, "now": now}
        params["lease"] = now + lease_seconds
        try:
            if self._postgres:
                row = await self._service.postgres_fetchrow(
                    _PG_BEGIN_RAW, *key, invocation_id, owner, lease_seconds, now
                )
            else:
                row = await self._sqlite_begin(params)
        except (sa_exc.IntegrityError, self._unique_violation) as exc:
            raise RunInProgressError(f"A run is already in progress on session {key[2]}.") from exc
        if row is None:
            raise SessionNotFoundError(key[2])
        return RunRecord(
            key=key,
            invocation_id=invocation_id,
            status=RunStatus.RUNNING,
            create_time=row[1],
            start_time=now,
            owner=owner,
            lease_expires=params["lease"],
            fence=row[0],
        )

    async def _sqlite_begin(self, params: dict[str, Any]) -> Any:
        async with self._write() as conn:
            fence = (
                await conn.execute(
                    sa.update(sessions)
                    .where(*_session_where(params))
                    .values(fence=sessions.c.fence + 1)
                    .returning(sessions.c.fence)
                )
            ).scalar_one_or_none()
            if fence is None:
                return None
            existing = (
                await conn.execute(sa.select(runs.c.create_time).where(*_run_where(params)))
            ).scalar_one_or_none()
            values = {
                "status": _RUNNING,
                "owner": params["owner"],
                "lease_expires": params["lease"],
                "fence": fence,
                "start_time": params["now"],
                "end_time": None,
                "error": None,
                "cancel_requested": False,
                "request": None,
            }
            if existing is None:
                await conn.execute(
                    sa.insert(runs).values(
                        app_name=params["app"],
                        user_id=params["user"],
                        session_id=params["sid"],
                        invocation_id=params["inv"],
                        create_time=params["now"],
                        **values,
                    )
                )
                return fence, params["now"]
            await conn.execute(sa.update(runs).where(*_run_where(params)).values(**values))
            return fence, existing

    async def enqueue(self, key: SessionKey, invocation_id: str, request: dict[str, Any]) -> None:
        """See `RunStore.enqueue`."""
        app_name, user_id, session_id = key
        if self._postgres:
            row = await self._service.postgres_fetchrow(
                _PG_ENQUEUE_RAW, *key, invocation_id, json.dumps(request)
            )
            if row is None:
                raise SessionNotFoundError(session_id)
            return
        try:
            async with self._write() as conn:
                await conn.execute(
                    sa.insert(runs).values(
                        app_name=app_name,
                        user_id=user_id,
                        session_id=session_id,
                        invocation_id=invocation_id,
                        status=RunStatus.QUEUED.value,
                        create_time=time.time(),
                        cancel_requested=False,
                        request=json.dumps(request),
                    )
                )
        except sa_exc.IntegrityError as exc:  # the foreign key: no such session
            raise SessionNotFoundError(session_id) from exc

    async def queue_head(self, key: SessionKey) -> str | None:
        """See `RunStore.queue_head`."""
        stmt = (
            sa.select(runs.c.invocation_id)
            .where(*_session_runs(key), runs.c.status == RunStatus.QUEUED.value)
            .order_by(runs.c.create_time, runs.c.invocation_id)
            .limit(1)
        )
        async with self._read() as conn:
            head: str | None = (await conn.execute(stmt)).scalar_one_or_none()
            return head

    async def finish(
        self,
        key: SessionKey,
        invocation_id: str,
        *,
        fence: int,
        status: RunStatus,
        last_seq: int | None,
        error: dict[str, Any] | None,
        announce: tuple[str, str] | None = None,
        watched: bool = True,
        claim: SessionClaim | None = None,
    ) -> bool:
        """See `RunStore.finish`."""
        if claim is not None and claim.held is not None:
            try:
                return await self._service.end_run(
                    claim,
                    status=status.value,
                    error_json=None if error is None else json.dumps(error),
                    announce=announce,
                    watched=watched,
                )
            except DatabaseUnavailableError:
                raise  # still held: stored with the end once the database answers
            except AgentServiceError:
                claim.held = None  # refused for good: the run ends without it
                raise
        if self._postgres:
            args: list[Any] = [*key, invocation_id, status.value, time.time()]
            args += [None if error is None else json.dumps(error), last_seq, fence]
            query = _PG_FINISH
            if announce is not None:
                query = _PG_FINISH_ANNOUNCED
                args += [*announce, watched]
            row = await self._service.postgres_fetchrow(query, *args)
            return bool(row[0])
        stmt = (
            sa.update(runs)
            .where(
                *_session_runs(key),
                runs.c.invocation_id == invocation_id,
                runs.c.status == _RUNNING,
                runs.c.fence == fence,
            )
            .values(**_end_values(status, last_seq, error))
        )
        async with self._single_write() as conn:
            result = await conn.execute(stmt)
        return bool(result.rowcount)

    def _clock(self) -> Any:
        """Now, for leases: the database's clock on Postgres, so replicas' clocks never matter
        (SQLite's replicas are one process)."""
        if self._postgres:
            return sa.func.extract("epoch", sa.func.clock_timestamp())
        return time.time()

    async def take_over(self, record: RunRecord, *, owner: str, lease_seconds: float) -> int | None:
        """See `RunStore.take_over`."""
        params = {**_key(record.key), "inv": record.invocation_id}
        now = self._clock()
        async with self._upkeep_write() as conn:
            fence = (await conn.execute(_PG_SEAL_FENCE, params)).scalar_one_or_none()
            if fence is None:
                return None
            taken = await conn.execute(
                sa.update(runs)
                .where(
                    *_run_where(params),
                    runs.c.status == _RUNNING,
                    runs.c.fence == record.fence,
                    runs.c.lease_expires < now,  # renewed since it was read: alive after all
                )
                .values(owner=owner, fence=fence, lease_expires=now + lease_seconds)
            )
            if not taken.rowcount:
                await conn.rollback()  # leave the session's fence alone
                return None
            return int(fence)

    async def renew(self, owner: str, invocation_ids: list[str], lease_seconds: float) -> None:
        """See `RunStore.renew`."""
        if not invocation_ids:
            return
        stmt = (
            sa.update(runs)
            .where(
                runs.c.status == _RUNNING,
                runs.c.owner == owner,
                runs.c.invocation_id.in_(invocation_ids),
            )
            .values(lease_expires=self._clock() + lease_seconds)
        )
        if self._postgres:
            async with self._upkeep_read() as conn:  # autocommit: one statement
                await conn.execute(stmt)
        else:
            async with self._write() as conn:
                await conn.execute(stmt)

    async def expired(self, now: float) -> list[RunRecord]:
        """See `RunStore.expired` (on Postgres, `now` is the database's)."""
        clock = self._clock() if self._postgres else now
        stmt = sa.select(runs).where(runs.c.status == _RUNNING, runs.c.lease_expires < clock)
        async with self._upkeep_read() as conn:
            return [_record(row) for row in (await conn.execute(stmt)).all()]

    async def get(self, key: SessionKey, invocation_id: str) -> RunRecord | None:
        """See `RunStore.get`."""
        stmt = sa.select(runs).where(*_session_runs(key), runs.c.invocation_id == invocation_id)
        async with self._read() as conn:
            row = (await conn.execute(stmt)).one_or_none()
        return None if row is None else _record(row)

    async def list_runs(
        self, key: SessionKey, *, status: RunStatus | None, limit: int, before: Cursor | None
    ) -> list[RunRecord]:
        """See `RunStore.list_runs`."""
        stmt = (
            sa.select(runs)
            .where(*_session_runs(key))
            .order_by(runs.c.create_time.desc(), runs.c.invocation_id.desc())
            .limit(limit)
        )
        if status is not None:
            stmt = stmt.where(runs.c.status == status.value)
        if before is not None:
            stmt = stmt.where(
                sa.tuple_(runs.c.create_time, runs.c.invocation_id)
                < sa.tuple_(sa.literal(before[0]), sa.literal(before[1]))
            )
        async with self._read() as conn:
            return [_record(row) for row in (await conn.execute(stmt)).all()]

    async def request_cancel(self, key: SessionKey, invocation_id: str) -> RunRecord | None:
        """See `RunStore.request_cancel`."""
        where = (*_session_runs(key), runs.c.invocation_id == invocation_id)
        async with self._write() as conn:
            await conn.execute(
                sa.update(runs)
                .where(*where, runs.c.status == RunStatus.QUEUED.value)
                .values(**_end_values(RunStatus.CANCELLED, None, None))
            )
            await conn.execute(
                sa.update(runs)
                .where(*where, runs.c.status == _RUNNING)
                .values(cancel_requested=True)
            )
            row = (await conn.execute(sa.select(runs).where(*where))).one_or_none()
        return None if row is None else _record(row)

    async def invocation_events(
        self, key: SessionKey, invocation_id: str, after_seq: int
    ) -> list[tuple[int, str]]:
        """See `RunStore.invocation_events`."""
        app_name, user_id, session_id = key
        stmt = (
            sa.select(events.c.seq, events.c.event_json)
            .where(
                events.c.app_name == app_name,
                events.c.user_id == user_id,
                events.c.session_id == session_id,
                events.c.seq > after_seq,
                events.c.invocation_id == invocation_id,
            )
            .order_by(events.c.seq)
        )
        async with self._read() as conn:
            return [(int(row[0]), row[1]) for row in (await conn.execute(stmt)).all()]


def _key(key: SessionKey) -> dict[str, Any]:
    return {"app": key[0], "user": key[1], "sid": key[2]}


def _session_where(params: dict[str, Any]) -> tuple[sa.ColumnElement[bool], ...]:
    return (
        sessions.c.app_name == params["app"],
        sessions.c.user_id == params["user"],
        sessions.c.id == params["sid"],
    )


def _session_runs(key: SessionKey) -> tuple[sa.ColumnElement[bool], ...]:
    return (runs.c.app_name == key[0], runs.c.user_id == key[1], runs.c.session_id == key[2])


def _run_where(params: dict[str, Any]) -> tuple[sa.ColumnElement[bool], ...]:
    return (
        *_session_runs((params["app"], params["user"], params["sid"])),
        runs.c.invocation_id == params["inv"],
    )


def _end_values(
    status: RunStatus, last_seq: int | None, error: dict[str, Any] | None
) -> dict[str, Any]:
    values: dict[str, Any] = {
        "status": status.value,
        "end_time": time.time(),
        "error": None if error is None else json.dumps(error),
        "owner": None,
        "lease_expires": None,
        "request": None,
    }
    if last_seq is not None:
        values["last_seq"] = last_seq
    return values


def _record(row: Any) -> RunRecord:
    return RunRecord(
        key=(row.app_name, row.user_id, row.session_id),
        invocation_id=row.invocation_id,
        status=RunStatus(row.status),
        create_time=row.create_time,
        start_time=row.start_time,
        end_time=row.end_time,
        last_seq=row.last_seq,
        error=decode_json(row.error),
        owner=row.owner,
        lease_expires=row.lease_expires,
        fence=row.fence,
        cancel_requested=bool(row.cancel_requested),
        request=decode_json(row.request),
    )
