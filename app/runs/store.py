"""RunStore: where runs are recorded and a session is taken for one invocation at a time.

`SqlRunStore` (Postgres, SQLite) keeps them in the `runs` table, where a partial unique index
admits one running invocation per session whatever the replica, and the session's fencing
token moves on each time a run takes or loses the session. `MemoryRunStore` offers the same
behaviour within one process, for `memory://`.
"""

from __future__ import annotations

import abc
import time
from dataclasses import replace
from typing import Any

from app.errors import RunInProgressError, SessionNotFoundError
from app.runs.record import RunRecord, RunStatus, SessionKey
from app.sessions import BaseSessionService, GetSessionConfig
from app.sessions.fence import SessionClaim

Cursor = tuple[float, str]
"""(create_time, invocation_id) of the last run of a page."""


class RunStore(abc.ABC):
    """The runs of every session; methods are atomic on their own."""

    announces_inline: bool = False
    """Whether `finish(announce=...)` sends the end's notification in the same statement."""

    claims_on_append: bool = False
    """Whether the session store can take a run's session with the run's first append, as
    `begin` would (see `app.sessions.fence.SessionClaim`)."""

    @abc.abstractmethod
    async def begin(
        self, key: SessionKey, invocation_id: str, *, owner: str, lease_seconds: float
    ) -> RunRecord:
        """Record the invocation as running and take the session (a new fencing token).

        Raises:
            RunInProgressError: another invocation is running on the session.
            SessionNotFoundError: the session does not exist.
        """

    @abc.abstractmethod
    async def enqueue(self, key: SessionKey, invocation_id: str, request: dict[str, Any]) -> None:
        """Record a queued run (its turn comes after the older queued ones).

        Raises:
            SessionNotFoundError: the session does not exist.
        """

    @abc.abstractmethod
    async def queue_head(self, key: SessionKey) -> str | None:
        """Return the oldest queued invocation of the session, if any."""

    @abc.abstractmethod
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
        """Record the end of a run that still holds the session; False if it did not.

        `announce` is the (channel, origin) of a notification to send along when the store
        `announces_inline`: always when the run is `watched` from another replica, else only
        when the session has queued runs (whose waiters may be anywhere). The last event
        `claim` holds back, if any, is stored by the same statement.

        Raises:
            AgentServiceError: the held event was refused (then dropped; the run is not
                ended), or the database is unavailable (then kept).
        """

    @abc.abstractmethod
    async def take_over(self, record: RunRecord, *, owner: str, lease_seconds: float) -> int | None:
        """Make `owner` the owner of a running run whose owner is gone, with a new fence.

        The old owner's appends are refused from then on. Returns the new fencing token (the
        new owner then answers the calls left open and finishes the run), or None when the
        run no longer runs with `record.fence` (someone else got there first).
        """

    @abc.abstractmethod
    async def renew(self, owner: str, invocation_ids: list[str], lease_seconds: float) -> None:
        """Extend the lease of these running invocations of `owner`."""

    @abc.abstractmethod
    async def expired(self, now: float) -> list[RunRecord]:
        """Return running runs whose lease expired before `now`."""

    @abc.abstractmethod
    async def get(self, key: SessionKey, invocation_id: str) -> RunRecord | None:
        """Return one run."""

    @abc.abstractmethod
    async def list_runs(
        self, key: SessionKey, *, status: RunStatus | None, limit: int, before: Cursor | None
    ) -> list[RunRecord]:
        """Return runs of the session newest first, created before `before` when given."""

    @abc.abstractmethod
    async def request_cancel(self, key: SessionKey, invocation_id: str) -> RunRecord | None:
        """Mark a running run as to be cancelled; a queued one is cancelled here and now.

        Returns the run as it is after the change (None when there is no such run).
        """

    @abc.abstractmethod
    async def invocation_events(
        self, key: SessionKey, invocation_id: str, after_seq: int
    ) -> list[tuple[int, str]]:
        """Return (seq, stored JSON) of the invocation's events after `after_seq`, in order."""

    async def close(self) -> None:
        """Release what the store holds."""
        return


class MemoryRunStore(RunStore):
    """Runs kept in this process, for a `memory://` session store."""

    def __init__(self, sessions: BaseSessionService) -> None:
        self._sessions = sessions
        self._runs: dict[SessionKey, dict[str, RunRecord]] = {}
        self._fences: dict[SessionKey, int] = {}

    async def _require_session(self, key: SessionKey) -> None:
        app_name, user_id, session_id = key
        config = GetSessionConfig(num_recent_events=0)
        found = await self._sessions.get_session(
            app_name=app_name, user_id=user_id, session_id=session_id, config=config
        )
        if found is None:
            self._runs.pop(key, None)
            raise SessionNotFoundError(session_id)

    async def begin(
        self, key: SessionKey, invocation_id: str, *, owner: str, lease_seconds: float
    ) -> RunRecord:
        """See `RunStore.begin`."""
        await self._require_session(key)
        runs = self._runs.setdefault(key, {})
        if any(r.status is RunStatus.RUNNING for r in runs.values()):
            raise RunInProgressError(f"A run is already in progress on session {key[2]}.")
        now = time.time()
        fence = self._fences[key] = self._fences.get(key, 0) + 1
        previous = runs.get(invocation_id)
        record = RunRecord(
            key=key,
            invocation_id=invocation_id,
            status=RunStatus.RUNNING,
            create_time=previous.create_time if previous else now,
            start_time=now,
            owner=owner,
            lease_expires=now + lease_seconds,
            fence=fence,
        )
        runs[invocation_id] = record
        return record

    async def enqueue(self, key: SessionKey, invocation_id: str, request: dict[str, Any]) -> None:
        """See `RunStore.enqueue`."""
        await self._require_session(key)
        self._runs.setdefault(key, {})[invocation_id] = RunRecord(
            key=key,
            invocation_id=invocation_id,
            status=RunStatus.QUEUED,
            create_time=time.time(),
            request=request,
        )

    async def queue_head(self, key: SessionKey) -> str | None:
        """See `RunStore.queue_head`."""
        queued = [r for r in self._runs.get(key, {}).values() if r.status is RunStatus.QUEUED]
        if not queued:
            return None
        return min(queued, key=lambda r: (r.create_time, r.invocation_id)).invocation_id

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
        """See `RunStore.finish` (no session store here holds events back)."""
        record = self._runs.get(key, {}).get(invocation_id)
        if record is None or record.status is not RunStatus.RUNNING or record.fence != fence:
            return False
        self._runs[key][invocation_id] = _ended(record, status, last_seq, error)
        return True

    async def take_over(self, record: RunRecord, *, owner: str, lease_seconds: float) -> int | None:
        """See `RunStore.take_over`."""
        current = self._runs.get(record.key, {}).get(record.invocation_id)
        if current is None or current.status is not RunStatus.RUNNING:
            return None
        if current.fence != record.fence:
            return None
        fence = self._fences[record.key] = self._fences.get(record.key, 0) + 1
        self._runs[record.key][record.invocation_id] = replace(
            current, owner=owner, fence=fence, lease_expires=time.time() + lease_seconds
        )
        return fence

    async def renew(self, owner: str, invocation_ids: list[str], lease_seconds: float) -> None:
        """See `RunStore.renew`."""
        wanted = set(invocation_ids)
        until = time.time() + lease_seconds
        for runs in self._runs.values():
            for inv, record in runs.items():
                if inv in wanted and record.owner == owner and record.status is RunStatus.RUNNING:
                    runs[inv] = replace(record, lease_expires=until)

    async def expired(self, now: float) -> list[RunRecord]:
        """See `RunStore.expired`."""
        return [
            record
            for runs in self._runs.values()
            for record in runs.values()
            if record.status is RunStatus.RUNNING and (record.lease_expires or 0) < now
        ]

    async def get(self, key: SessionKey, invocation_id: str) -> RunRecord | None:
        """See `RunStore.get`."""
        return self._runs.get(key, {}).get(invocation_id)

    async def list_runs(
        self, key: SessionKey, *, status: RunStatus | None, limit: int, before: Cursor | None
    ) -> list[RunRecord]:
        """See `RunStore.list_runs`."""
        records = sorted(
            self._runs.get(key, {}).values(),
            key=lambda r: (r.create_time, r.invocation_id),
            reverse=True,
        )
        if status is not None:
            records = [r for r in records if r.status is status]
        if before is not None:
            records = [r for r in records if (r.create_time, r.invocation_id) < before]
        return records[:limit]

    async def request_cancel(self, key: SessionKey, invocation_id: str) -> RunRecord | None:
        """See `RunStore.request_cancel`."""
        record = self._runs.get(key, {}).get(invocation_id)
        if record is None:
            return None
        if record.status is RunStatus.QUEUED:
            record = _ended(record, RunStatus.CANCELLED, None, None)
        elif record.status is RunStatus.RUNNING:
            record = replace(record, cancel_requested=True)
        self._runs[key][invocation_id] = record
        return record

    async def invocation_events(
        self, key: SessionKey, invocation_id: str, after_seq: int
    ) -> list[tuple[int, str]]:
        """See `RunStore.invocation_events`."""
        app_name, user_id, session_id = key
        events = await self._sessions.list_events(
            app_name=app_name, user_id=user_id, session_id=session_id, after_seq=after_seq
        )
        return [
            (e.seq, e.to_json())
            for e in events
            if e.invocation_id == invocation_id and e.seq is not None
        ]


def _ended(
    record: RunRecord, status: RunStatus, last_seq: int | None, error: dict[str, Any] | None
) -> RunRecord:
    return replace(
        record,
        status=status,
        end_time=time.time(),
        last_seq=last_seq if last_seq is not None else record.last_seq,
        error=error,
        owner=None,
        lease_expires=None,
        request=None,
    )
