"""QuotaStore: the per-user counters behind the quotas, in Postgres or in this process.

Each operation is one atomic step: on Postgres one statement on the `quota_counters` table
(migration 0006), so replicas share the counters without read-modify-write races; in process
(SQLite, `memory://`: one process owns the data) plain dictionary updates between awaits.

A row per (user, kind): `runs` counts the runs started in the current rate window, `tokens`
the model tokens used in the current budget window, `active` the runs queued or running.
A window counter starts over when a newer window begins (`window_start` moves on).
"""

from __future__ import annotations

import abc
from dataclasses import dataclass

from app.sessions import DatabaseSessionService

RUNS = "runs"
TOKENS = "tokens"
ACTIVE = "active"


@dataclass(frozen=True, slots=True)
class Counters:
    """A user's counters as stored (window counts only for the window given)."""

    runs: int = 0
    tokens: int = 0
    active: int = 0


class QuotaStore(abc.ABC):
    """Per-user counters; every method is atomic on its own."""

    @abc.abstractmethod
    async def take(self, user_id: str, kind: str, window_start: float, limit: int) -> int | None:
        """Add one to a window counter unless it reached `limit`; return the new count or None."""

    @abc.abstractmethod
    async def give_back(self, user_id: str, kind: str, window_start: float) -> None:
        """Undo one `take` of this window (a run refused by a later check)."""

    @abc.abstractmethod
    async def add(self, user_id: str, kind: str, window_start: float, amount: int) -> None:
        """Add `amount` to a window counter."""

    @abc.abstractmethod
    async def reserve_active(self, user_id: str, limit: int) -> int | None:
        """Count one more active run unless there are `limit`; return the new count or None."""

    @abc.abstractmethod
    async def release_active(self, user_id: str) -> None:
        """Count one active run less (never below zero)."""

    async def recount_active(self, user_id: str) -> None:
        """Lower the active count to the user's queued/running runs (leaks of dead replicas)."""
        return

    @abc.abstractmethod
    async def counters(
        self, user_id: str, runs_window: float | None, tokens_window: float | None
    ) -> Counters:
        """Return the user's counters (a window count is 0 unless it is of the window given)."""


class MemoryQuotaStore(QuotaStore):
    """Counters in this process (SQLite or `memory://`: a single process serves the data)."""

    def __init__(self) -> None:
        self._windows: dict[tuple[str, str], tuple[float, int]] = {}
        self._active: dict[str, int] = {}

    def _count(self, user_id: str, kind: str, window_start: float) -> int:
        start, count = self._windows.get((user_id, kind), (window_start, 0))
        return count if start >= window_start else 0

    async def take(self, user_id: str, kind: str, window_start: float, limit: int) -> int | None:
        """See `QuotaStore.take`."""
        count = self._count(user_id, kind, window_start)
        if count >= limit:
            return None
        self._windows[(user_id, kind)] = (window_start, count + 1)
        return count + 1

    async def give_back(self, user_id: str, kind: str, window_start: float) -> None:
        """See `QuotaStore.give_back`."""
        count = self._count(user_id, kind, window_start)
        self._windows[(user_id, kind)] = (window_start, max(count - 1, 0))

    async def add(self, user_id: str, kind: str, window_start: float, amount: int) -> None:
        """See `QuotaStore.add`."""
        count = self._count(user_id, kind, window_start)
        self._windows[(user_id, kind)] = (window_start, count + amount)

    async def reserve_active(self, user_id: str, limit: int) -> int | None:
        """See `QuotaStore.reserve_active`."""
        count = self._active.get(user_id, 0)
        if count >= limit:
            return None
        self._active[user_id] = count + 1
        return count + 1

    async def release_active(self, user_id: str) -> None:
        """See `QuotaStore.release_active`."""
        count = self._active.get(user_id, 0) - 1
        if count > 0:
            self._active[user_id] = count
        else:
            self._active.pop(user_id, None)

    async def counters(
        self, user_id: str, runs_window: float | None, tokens_window: float | None
    ) -> Counters:
        """See `QuotaStore.counters`."""
        return Counters(
            runs=self._count(user_id, RUNS, runs_window) if runs_window is not None else 0,
            tokens=self._count(user_id, TOKENS, tokens_window) if tokens_window is not None else 0,
            active=self._active.get(user_id, 0),
        )


# $1 user, $2 kind, $3 window start, $4 limit. A newer window starts the count over; a row of
# a newer window than ours (a replica whose clock is ahead) is counted as ours. No row back:
# the limit is reached.
_PG_TAKE = """
INSERT INTO quota_counters AS q (user_id, kind, window_start, count) VALUES ($1, $2, $3, 1)
ON CONFLICT (user_id, kind) DO UPDATE
   SET count = CASE WHEN q.window_start >= excluded.window_start THEN q.count + 1 ELSE 1 END,
       window_start = GREATEST(q.window_start, excluded.window_start)
 WHERE q.window_start < excluded.window_start OR q.count < $4
RETURNING count
"""
_PG_GIVE_BACK = """
UPDATE quota_counters SET count = GREATEST(count - 1, 0)
 WHERE user_id = $1 AND kind = $2 AND window_start >= $3
"""
_PG_ADD = """
INSERT INTO quota_counters AS q (user_id, kind, window_start, count) VALUES ($1, $2, $3, $4)
ON CONFLICT (user_id, kind) DO UPDATE
   SET count = CASE WHEN q.window_start >= excluded.window_start
                    THEN q.count + excluded.count ELSE excluded.count END,
       window_start = GREATEST(q.window_start, excluded.window_start)
"""
_PG_RESERVE = """
INSERT INTO quota_counters AS q (user_id, kind, window_start, count) VALUES ($1, 'active', 0, 1)
ON CONFLICT (user_id, kind) DO UPDATE SET count = q.count + 1 WHERE q.count < $2
RETURNING count
"""
_PG_RELEASE = """
UPDATE quota_counters SET count = GREATEST(count - 1, 0) WHERE user_id = $1 AND kind = 'active'
"""
# Only lowers the count: a run whose replica died (its row sealed by the runs layer) no longer
# holds a slot. Runs reserved but not yet recorded may be missed for a moment; the count then
# errs low, and comes back to zero when the user's runs end (releases stop at zero).
_PG_RECOUNT = """
UPDATE quota_counters
   SET count = LEAST(count, (SELECT count(*) FROM runs
                              WHERE user_id = $1 AND status IN ('queued', 'running')))
 WHERE user_id = $1 AND kind = 'active'
"""
_PG_COUNTERS = """
SELECT
  (SELECT count FROM quota_counters WHERE user_id = $1 AND kind = 'runs' AND window_start >= $2),
  (SELECT count FROM quota_counters WHERE user_id = $1 AND kind = 'tokens' AND window_start >= $3),
  (SELECT count FROM quota_counters WHERE user_id = $1 AND kind = 'active')
"""


class PostgresQuotaStore(QuotaStore):
    """Counters in the `quota_counters` table, shared by every replica on the database."""

    TABLES = ("quota_counters",)
    """The tables this store needs (for readiness checks)."""

    def __init__(self, sessions: DatabaseSessionService) -> None:
        self._fetchrow = sessions.postgres_fetchrow

    async def take(self, user_id: str, kind: str, window_start: float, limit: int) -> int | None:
        """See `QuotaStore.take`."""
        row = await self._fetchrow(_PG_TAKE, user_id, kind, window_start, limit)
        return None if row is None else int(row[0])

    async def give_back(self, user_id: str, kind: str, window_start: float) -> None:
        """See `QuotaStore.give_back`."""
        await self._fetchrow(_PG_GIVE_BACK, user_id, kind, window_start)

    async def add(self, user_id: str, kind: str, window_start: float, amount: int) -> None:
        """See `QuotaStore.add`."""
        await self._fetchrow(_PG_ADD, user_id, kind, window_start, amount)

    async def reserve_active(self, user_id: str, limit: int) -> int | None:
        """See `QuotaStore.reserve_active`."""
        row = await self._fetchrow(_PG_RESERVE, user_id, limit)
        return None if row is None else int(row[0])

    async def release_active(self, user_id: str) -> None:
        """See `QuotaStore.release_active`."""
        await self._fetchrow(_PG_RELEASE, user_id)

    async def recount_active(self, user_id: str) -> None:
        """See `QuotaStore.recount_active`."""
        await self._fetchrow(_PG_RECOUNT, user_id)

    async def counters(
        self, user_id: str, runs_window: float | None, tokens_window: float | None
    ) -> Counters:
        """See `QuotaStore.counters`."""
        far = float("inf")  # a disabled window matches no row
        row = await self._fetchrow(
            _PG_COUNTERS,
            user_id,
            far if runs_window is None else runs_window,
            far if tokens_window is None else tokens_window,
        )
        return Counters(runs=row[0] or 0, tokens=row[1] or 0, active=row[2] or 0)
