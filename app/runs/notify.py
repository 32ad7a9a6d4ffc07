"""Run signals between replicas: Postgres `LISTEN/NOTIFY`, or in process for the others.

A signal names what happened to which run and carries ids only, never payloads (readers
fetch events by `seq`): `(kind, app, user, session, invocation, *extra)`. Kinds:

    cancel    -> the owner: stop this run            watch     -> the owner: announce its events
    watching  <- the owner: from now on, `event`s    event     <- the owner: seq N was stored
    end       <- the run ended (or a queued one left the queue): wake waiters and watchers

Every other replica receives every signal and keeps the ones it cares about; a replica's own
signals are not delivered back to it (it handles its own runs directly).
"""

from __future__ import annotations

import abc
import asyncio
import contextlib
import json
import logging
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy.engine import URL

logger = logging.getLogger(__name__)

Signal = tuple[Any, ...]
"""(kind, app_name, user_id, session_id, invocation_id, *extra)"""

SignalHandler = Callable[[Signal], None]

CHANNEL = "agent_service_runs"
"""The Postgres channel every replica listens on."""

_RECONNECT_SECONDS = (0.1, 0.5, 1.0, 2.0)
_OUTBOX = 10_000


class RunNotifier(abc.ABC):
    """Delivers signals to every replica's handler (this one's included)."""

    def __init__(self) -> None:
        self._handler: SignalHandler | None = None

    async def start(self, handler: SignalHandler) -> None:
        """Start delivering signals to `handler` (called on the event loop)."""
        self._handler = handler

    @abc.abstractmethod
    def publish(self, signal: Signal) -> None:
        """Send a signal; never blocks (delivery is asynchronous, in order)."""

    def inline_end(self) -> tuple[str, str] | None:
        """Return (channel, origin) for a store to announce a run's end with its own statement
        (the statement builds the payload, `[origin, "end", app, user, session, invocation]`)."""
        return None

    async def close(self) -> None:
        """Stop delivering."""
        self._handler = None


class LocalNotifier(RunNotifier):
    """One process: there is no other replica to tell."""

    def publish(self, signal: Signal) -> None:
        """See `RunNotifier.publish`."""


class PostgresNotifier(RunNotifier):
    """`LISTEN`/`NOTIFY` on one dedicated asyncpg connection, reconnected when lost.

    Signals published while the connection is down wait in a bounded outbox. After a
    reconnect, the handler gets a `("resync",)` signal: notifications may have been missed,
    so waiters re-read what they wait for.
    """

    def __init__(self, url: URL) -> None:
        super().__init__()
        self._dsn = url.set(drivername="postgresql").render_as_string(hide_password=False)
        self._outbox: asyncio.Queue[Signal] = asyncio.Queue(_OUTBOX)
        self._task: asyncio.Task[None] | None = None
        self._connected = asyncio.Event()
        self._origin = uuid.uuid4().hex

    async def start(self, handler: SignalHandler) -> None:
        """Connect and listen; keeps reconnecting in the background if the first try fails."""
        await super().start(handler)
        self._task = asyncio.get_running_loop().create_task(self._serve())
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(5):
                await self._connected.wait()

    def inline_end(self) -> tuple[str, str] | None:
        """See `RunNotifier.inline_end`."""
        return CHANNEL, self._origin

    def publish(self, signal: Signal) -> None:
        """See `RunNotifier.publish`."""
        try:
            self._outbox.put_nowait(signal)
        except asyncio.QueueFull:
            logger.warning("run signal dropped (outbox full) kind=%s", signal[0])

    async def close(self) -> None:
        """Stop listening and close the connection."""
        await super().close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def _serve(self) -> None:
        import asyncpg

        attempt = 0
        first = True
        while True:
            try:
                connection = await asyncpg.connect(self._dsn)
            except (OSError, asyncpg.PostgresError, TimeoutError) as exc:
                delay = _RECONNECT_SECONDS[min(attempt, len(_RECONNECT_SECONDS) - 1)]
                attempt += 1
                logger.warning("run notifications: connect failed error=%s", exc)
                await asyncio.sleep(delay)  # back-off between reconnects, not a wait
                continue
            attempt = 0
            try:
                await connection.add_listener(CHANNEL, self._on_notify)
                self._connected.set()
                if not first:
                    self._deliver(("resync",))
                first = False
                await self._send_outbox(connection)
            except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                logger.warning("run notifications: connection lost error=%s", exc)
            finally:
                self._connected.clear()
                with contextlib.suppress(Exception):
                    await asyncio.shield(connection.close(timeout=1))

    async def _send_outbox(self, connection: Any) -> None:
        closed = asyncio.Event()
        connection.add_termination_listener(lambda _conn: closed.set())
        while True:
            getter = asyncio.ensure_future(self._outbox.get())
            waiter = asyncio.ensure_future(closed.wait())
            try:
                await asyncio.wait({getter, waiter}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                waiter.cancel()
                if not getter.done():
                    getter.cancel()
            if not getter.done() or getter.cancelled():
                raise OSError("the notification connection closed")
            signal = getter.result()
            try:
                payload = json.dumps([self._origin, *signal])
                await connection.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)
            except BaseException:
                with contextlib.suppress(asyncio.QueueFull):
                    self._outbox.put_nowait(signal)  # resent after the reconnect
                raise

    def _on_notify(self, _connection: Any, _pid: int, _channel: str, payload: str) -> None:
        try:
            origin, *signal = json.loads(payload)
        except (ValueError, TypeError):
            logger.warning("run notifications: malformed payload ignored")
            return
        if origin != self._origin and signal:
            self._deliver(tuple(signal))

    def _deliver(self, signal: Signal) -> None:
        handler = self._handler
        if handler is None:
            return
        try:
            handler(signal)
        except Exception:
            logger.exception("run signal handler failed kind=%s", signal[0] if signal else "-")
