"""IdleSessionCloser: closes sessions into memory once they have been idle long enough.

Every replica runs one; they need no coordination beyond the database: each close claims the
session's close watermark with a compare-and-set (`BaseSessionService.claim_close`), so of
several replicas finding the same idle session, one adds it to memory and the others skip it.
A session with a run in progress in this process is skipped and found again next time.
"""

from __future__ import annotations

import asyncio
import logging
import time

from app.errors import DatabaseUnavailableError, RunInProgressError
from app.runs import RunManager
from app.server.registry import RunnerRegistry
from app.sessions import BaseSessionService

logger = logging.getLogger(__name__)

BATCH_SIZE = 100
"""Sessions closed per database query; a full batch is followed by the next one at once."""

MIN_INTERVAL_SECONDS = 0.05
MAX_INTERVAL_SECONDS = 60.0


class IdleSessionCloser:
    """Periodically closes the sessions idle for `idle_after` seconds (a task `close()` ends)."""

    def __init__(
        self,
        registry: RunnerRegistry,
        sessions: BaseSessionService,
        runs: RunManager,
        *,
        idle_after: float,
    ) -> None:
        self._registry = registry
        self._runs = runs
        self._sessions = sessions
        self.idle_after = idle_after
        # Looking four times per idle period closes a session at most 25% late.
        self.interval = min(max(idle_after / 4, MIN_INTERVAL_SECONDS), MAX_INTERVAL_SECONDS)
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self.swept = asyncio.Event()
        """Set after each sweep (tests wait on it; clear it first)."""

    def start(self) -> None:
        """Start sweeping in the background."""
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._loop())

    async def close(self) -> None:
        """Stop sweeping; a close in progress finishes first."""
        self._stopping.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def sweep(self) -> int:
        """Close every session idle long enough; return how many this process closed."""
        closed = 0
        while not self._stopping.is_set():
            cutoff = time.time() - self.idle_after
            batch = await self._sessions.list_unclosed_sessions(
                app_names=self._registry.names, updated_before=cutoff, limit=BATCH_SIZE
            )
            progressed = False
            for app_name, user_id, session_id in batch:
                try:
                    done = await self._close_one(app_name, user_id, session_id, cutoff)
                except DatabaseUnavailableError:
                    raise  # every other session would fail the same way: next sweep
                except Exception as exc:  # noqa: BLE001 - one bad session must not stop the rest
                    logger.warning(
                        "closing idle session failed app=%s session=%s error=%r",
                        app_name,
                        session_id,
                        exc,
                    )
                    continue
                if done:
                    closed += 1
                    progressed = True
            if len(batch) < BATCH_SIZE or not progressed:
                break
        return closed

    async def _close_one(self, app_name: str, user_id: str, session_id: str, cutoff: float) -> bool:
        try:
            await self._runs.ensure_idle((app_name, user_id, session_id))
        except RunInProgressError:
            return False  # not idle after all: next sweep
        session = await self._sessions.get_session(
            app_name=app_name, user_id=user_id, session_id=session_id
        )
        if session is None or session.last_update_time >= cutoff:
            return False  # deleted, or active again since it was listed
        if not await self._registry.runner(app_name).close_session(session):
            return False  # another replica closed it
        logger.info(
            "idle session closed app=%s session=%s seq=%d",
            app_name,
            session_id,
            session.last_seq,
        )
        return True

    async def _loop(self) -> None:
        while not self._stopping.is_set():
            try:
                await asyncio.wait_for(self._stopping.wait(), timeout=self.interval)
                return
            except TimeoutError:
                pass
            try:
                await self.sweep()
            except Exception as exc:  # noqa: BLE001 - the next sweep retries
                logger.warning("closing idle sessions failed error=%r", exc)
            self.swept.set()
