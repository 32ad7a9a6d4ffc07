"""Graceful drain on SIGTERM: stop taking runs, let running ones finish, then stop.

On the first SIGTERM: `/readyz` answers 503 at once and new runs get `503 shutting_down`
(the load balancer sends them elsewhere); live sockets are closed with 1012 (service
restart) so their clients reconnect to another replica; running runs get
`AGENT_SERVICE_DRAIN_SECONDS` to finish and are then cancelled (their open calls answered,
their rows sealed `cancelled`). Only then does uvicorn's own shutdown begin: the handler it
installed is called, as if the signal had just arrived. A second SIGTERM skips the wait.

The handler is installed by the app's lifespan on the main thread's loop (uvicorn installs
its own first) and the previous one is put back when the lifespan ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from app.runs import CancelReason, RunManager

logger = logging.getLogger(__name__)

CANCEL_GRACE_SECONDS = 5.0
"""Bound on the wait for cancelled runs to store their end."""


class Drainer:
    """Owns the SIGTERM handler of one app instance."""

    def __init__(self, runs: RunManager, drain_seconds: float) -> None:
        self.runs = runs
        self.drain_seconds = drain_seconds
        self._previous: Any = None
        self._installed = False
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def install(self) -> None:
        """Take over SIGTERM (main thread only; elsewhere signals are not ours to handle)."""
        if threading.current_thread() is not threading.main_thread():
            return
        self._loop = asyncio.get_running_loop()
        self._previous = signal.getsignal(signal.SIGTERM)
        signal.signal(signal.SIGTERM, self._on_sigterm)
        self._installed = True

    async def uninstall(self) -> None:
        """Put the previous handler back and stop a drain in progress."""
        if self._installed:
            signal.signal(signal.SIGTERM, self._previous)
            self._installed = False
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def _on_sigterm(self, signum: int, frame: Any) -> None:
        loop = self._loop
        if loop is None or self._task is not None:
            self._hand_over(signum, frame)  # a second SIGTERM: stop now
            return
        loop.call_soon_threadsafe(self._start, signum, frame)

    def _start(self, signum: int, frame: Any) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.drain(signum, frame))

    async def drain(self, signum: int = signal.SIGTERM, frame: Any = None) -> None:
        """Drain this replica's runs, then let the server shut down."""
        runs = self.runs
        runs.draining = True
        live = runs.stop_live(CancelReason.SHUTDOWN)
        logger.info(
            "draining runs=%d live_closed=%d seconds=%s",
            len(runs.active) - live,
            live,
            self.drain_seconds,
        )
        if not await runs.wait_idle(self.drain_seconds):
            stopped = runs.stop_all(CancelReason.SHUTDOWN)
            logger.warning("drain timed out: cancelling runs=%d", stopped)
            await runs.wait_idle(CANCEL_GRACE_SECONDS)
        self._hand_over(signum, frame)

    def _hand_over(self, signum: int, frame: Any) -> None:
        previous: Callable[[int, Any], Any] | int | None = self._previous
        if callable(previous):
            previous(signum, frame)
        elif self._installed:
            signal.signal(signal.SIGTERM, previous)
            self._installed = False
            signal.raise_signal(signum)
