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
class Limits:
    """What one admission checks; a None limit is off (its window is then ignored)."""

    tokens_window: float = 0.0
    token_budget: int | None = None
    active_limit: int | None = None
    runs_window: float = 0.0
    run_limit: int | None = None


@dataclass(frozen=True, slots=True)
class Admission:
    """What one admission found. Checked in this order, each step only if the one before
    passed: the budget (`tokens_used`), an active slot, a run of the window."""

    tokens_used: int = 0
    active: int | None = None
    """The user's active runs with this one; None: no slot (refused, or the quota is off)."""
    runs: int | None = None
    """Runs of the window with this one; None: refused (or the quota is off)."""


@dataclass(frozen=True, slots=True)
class Counters:
    """A user's counters as stored (window counts only for the window given)."""

    runs: int = 0
    tokens: int = 0
    active: int = 0


class QuotaStore(abc.ABC):
    """Per-user counters; every method is atomic on its own."""

    @abc.abstractmethod
    async def admit(self, user_id: str, limits: Limits) -> Admission:
        """Check the budget, then take an active slot, then a run of the window (each only
        when the previous step passed and its limit is on), as one atomic step."""

    @abc.abstractmethod
    async def finish(
        self, user_id: str, *, release_active: bool, tokens_window: float, tokens: int
    ) -> None:
        """Free an active slot (never below zero) and/or add tokens to the budget window."""

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

    async def admit(self, user_id: str, limits: Limits) -> Admission:
        """See `QuotaStore.admit` (no await inside: atomic in the event loop)."""
        used = 0
        if limits.token_budget is not None:
            used = self._count(user_id, TOKENS, limits.tokens_window)
            if used >= limits.token_budget:
                return Admission(tokens_used=used)
        active = None
        if limits.active_limit is not None:
            count = self._active.get(user_id, 0)
            if count >= limits.active_limit:
                return Admission(tokens_used=used)
            active = self._active[user_id] = count + 1
        runs = None
        if limits.run_limit is not None:
            count = self._count(user_id, RUNS, limits.runs_window)
            if count < limits.run_limit:
                runs = count + 1
                self._windows[(user_id, RUNS)] = (limits.runs_window, runs)
        return Admission(tokens_used=used, active=active, runs=runs)

    async def finish(
        self, user_id: str, *, release_active: bool, tokens_window: float, tokens: int
    ) -> None:
        """See `QuotaStore.finish`."""
        if release_active:
            count = self._active.get(user_id, 0) - 1
            if count > 0:
                self._active[user_id] = count
            else:
                self._active.pop(user_id, None)
        if tokens:
            count = self._count(user_id, TOKENS, tokens_window)
            self._windows[(user_id, TOKENS)] = (tokens_window, count + tokens)

    async def counters(
        self, user_id: str, runs_window: float | None, tokens_window: float | None
    ) -> Counters:
        """See `QuotaStore.counters`."""
        return Counters(
            runs=self._count(user_id, RUNS, runs_window) if runs_window is not None else 0,
            tokens=self._count(user_id, TOKENS, tokens_window) if tokens_window is not None else 0,
            active=self._active.get(user_id, 0),
        )


# The admission as one statement, built from the steps that are on (`_admit_sql`): each
# step's INSERT selects from the step before, so it runs only when that one passed. In a
# window step, a newer window starts the count over, and a row of a newer window than ours
# (a replica whose clock is ahead) counts as ours. $1 user; the rest numbered as they come.
_PG_TOKENS_STEP = """
tok AS (SELECT COALESCE((SELECT count FROM quota_counters
                          WHERE user_id = $1 AND kind = 'tokens'
                            AND window_start >= {w}::float8), 0) AS used),
tok_ok AS (SELECT 1 FROM tok WHERE used < {limit}::int8)"""
_PG_ACTIVE_STEP = """
act AS (INSERT INTO quota_counters AS q (user_id, kind, window_start, count)
        SELECT $1, 'active', 0, 1 {source}
        ON CONFLICT (user_id, kind) DO UPDATE SET count = q.count + 1 WHERE q.count < {limit}::int8
        RETURNING count)"""
_PG_RUNS_STEP = """
rate AS (INSERT INTO quota_counters AS q (user_id, kind, window_start, count)
         SELECT $1, 'runs', {w}::float8, 1 {source}
         ON CONFLICT (user_id, kind) DO UPDATE
            SET count = CASE WHEN q.window_start >= excluded.window_start
                             THEN q.count + 1 ELSE 1 END,
                window_start = GREATEST(q.window_start, excluded.window_start)
          WHERE q.window_start < excluded.window_start OR q.count < {limit}::int8
         RETURNING count)"""
_PG_RELEASE = """
UPDATE quota_counters SET count = GREATEST(count - 1, 0) WHERE user_id = $1 AND kind = 'active'
"""
_PG_ADD_TOKENS = """
INSERT INTO quota_counters AS q (user_id, kind, window_start, count) VALUES ($1, 'tokens', $2, $3)
ON CONFLICT (user_id, kind) DO UPDATE
   SET count = CASE WHEN q.window_start >= excluded.window_start
                    THEN q.count + excluded.count ELSE excluded.count END,
       window_start = GREATEST(q.window_start, excluded.window_start)
"""
_PG_RELEASE_AND_ADD = "WITH released AS (" + _PG_RELEASE.strip() + " RETURNING 1)" + _PG_ADD_TOKENS
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


def _admit_sql(tokens: bool, active: bool, runs: bool) -> str:
    """The admission statement for the steps that are on; parameters in `_admit_args` order."""
    steps: list[str] = []
    outputs = ["(SELECT used FROM tok)" if tokens else "0"]
    number = 1
    source = ""
    if tokens:
        steps.append(_PG_TOKENS_STEP.format(w=f"${number + 1}", limit=f"${number + 2}"))
        number += 2
        source = "FROM tok_ok"
    if active:
        steps.append(_PG_ACTIVE_STEP.format(source=source, limit=f"${number + 1}"))
        number += 1
        source = "FROM act"
    outputs.append("(SELECT count FROM act)" if active else "NULL")
    if runs:
        steps.append(
            _PG_RUNS_STEP.format(source=source, w=f"${number + 1}", limit=f"${number + 2}")
        )
    outputs.append("(SELECT count FROM rate)" if runs else "NULL")
    return "WITH" + ",".join(steps) + "\nSELECT " + ", ".join(outputs)


class PostgresQuotaStore(QuotaStore):
    """Counters in the `quota_counters` table, shared by every replica on the database."""

    TABLES = ("quota_counters",)
    """The tables this store needs (for readiness checks)."""

    def __init__(self, sessions: DatabaseSessionService) -> None:
        self._fetchrow = sessions.postgres_fetchrow
        self._admit_sql: dict[tuple[bool, bool, bool], str] = {}

    async def admit(self, user_id: str, limits: Limits) -> Admission:
        """See `QuotaStore.admit`: one statement."""
        shape = (
            limits.token_budget is not None,
            limits.active_limit is not None,
            limits.run_limit is not None,
        )
        if not any(shape):
            return Admission()
        sql = self._admit_sql.get(shape)
        if sql is None:
            sql = self._admit_sql[shape] = _admit_sql(*shape)
        args: list[object] = [user_id]
        if limits.token_budget is not None:
            args += [limits.tokens_window, limits.token_budget]
        if limits.active_limit is not None:
            args.append(limits.active_limit)
        if limits.run_limit is not None:
            args += [limits.runs_window, limits.run_limit]
        row = await self._fetchrow(sql, *args)
        return Admission(tokens_used=int(row[0]), active=row[1], runs=row[2])

    async def finish(
        self, user_id: str, *, release_active: bool, tokens_window: float, tokens: int
    ) -> None:
        """See `QuotaStore.finish`: one statement."""
        if release_active and tokens:
            await self._fetchrow(_PG_RELEASE_AND_ADD, user_id, tokens_window, tokens)
        elif release_active:
            await self._fetchrow(_PG_RELEASE, user_id)
        elif tokens:
            await self._fetchrow(_PG_ADD_TOKENS, user_id, tokens_window, tokens)

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
