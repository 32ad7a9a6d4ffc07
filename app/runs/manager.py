"""RunManager: the runs of one replica, and what it does for the runs of the others.

It decides whether a request may start (reject, enqueue, interrupt), holds the session for
the run (the store's fencing token) while the caller drives the Runner, renews the lease,
seals the runs of dead replicas, forwards cancels, and publishes each stored event to whoever
is attached: in process directly, other replicas through the notifier (ids only).
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import functools
import itertools
import logging
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from app.errors import (
    AgentServiceError,
    DatabaseUnavailableError,
    RunCancelledError,
    RunFinishedError,
    RunInProgressError,
    RunNotFoundError,
    ShuttingDownError,
)
from app.events.event import Event
from app.observability import metrics
from app.runners import Runner
from app.runs.notify import RunNotifier, Signal
from app.runs.record import RunRecord, RunStatus, SessionKey
from app.runs.store import Cursor, RunStore
from app.sessions.fence import SessionClaim, fenced

logger = logging.getLogger(__name__)

CANCELLED_RESPONSE = {"error": "cancelled"}
"""Function response stored for calls a cancelled run left open."""

LOST_RESPONSE = {"error": "run_lost"}
"""Function response stored for calls a lost run (dead replica) left open."""

LOST_PROBLEM = {
    "type": "about:blank",
    "title": "Run lost",
    "status": 500,
    "code": "run_lost",
    "detail": "The replica running this invocation stopped before it finished.",
}
"""The error a lost run is sealed with."""

_WATCH_ACK_SECONDS = 1.0
_WATCHED_MAX = 10_000
_WATCHED_SECONDS = 3600.0
_INTERRUPT_ATTEMPTS = 5
_RECENT_EVENTS_FOR_REPAIR = 50


class MultitaskStrategy(enum.StrEnum):
    """What `:run` does when the session already has an active run."""

    REJECT = "reject"
    ENQUEUE = "enqueue"
    INTERRUPT = "interrupt"


class CancelReason(enum.StrEnum):
    """Why a run of this replica was stopped before it finished."""

    CANCELLED = "cancelled"
    SHUTDOWN = "shutdown"
    LOST = "lost"


@dataclass(eq=False)
class ActiveRun:
    """A run this replica is driving: it holds the session with its claim until `finish`."""

    key: SessionKey
    invocation_id: str
    claim: SessionClaim
    """Run the Runner in `fenced(claim)`; pending until the session store takes it."""
    task: asyncio.Task[Any] | None = None
    cancel_reason: CancelReason | None = None
    """Set (before the task is cancelled) when the run is stopped on purpose."""
    remote_watchers: bool = False
    """Whether another replica follows or waits for this run (its events and end are then
    announced to every replica)."""
    last_seq: int | None = None
    live: bool = False
    """A live WebSocket connection (closed at once on shutdown, not drained)."""

    @property
    def fence(self) -> int | None:
        """The session's fencing token this run holds (None: not taken yet)."""
        return self.claim.fence


@dataclass(frozen=True)
class Frame:
    """One item of a followed run: a stored event, a partial one, a keep-alive or the end."""

    kind: str
    """`stored` (seq, json), `partial` (json), `ping`, or `end` (record)."""
    seq: int | None = None
    json: str | None = None
    record: RunRecord | None = None


@dataclass(eq=False)
class _Subscriber:
    queue: asyncio.Queue[tuple[Any, ...]] = field(default_factory=asyncio.Queue)


class RunManager:
    """Runs of this replica, over a `RunStore` and a `RunNotifier` shared by all replicas."""

    def __init__(
        self,
        store: RunStore,
        notifier: RunNotifier,
        runners: Callable[[str], Runner],
        *,
        lease_seconds: float = 10.0,
        replica_id: str | None = None,
    ) -> None:
        self.store = store
        self.notifier = notifier
        self.lease_seconds = lease_seconds
        self.replica_id = replica_id or f"r-{uuid.uuid4().hex[:12]}"
        self._runners = runners
        self._local: dict[str, ActiveRun] = {}
        self._subscribers: dict[SessionKey, set[_Subscriber]] = {}
        self._unsealed: list[tuple[ActiveRun, RunStatus, dict[str, Any] | None]] = []
        self._tickers: list[asyncio.Task[None]] = []
        self._ticks = itertools.count()
        self._head_reads: dict[SessionKey, tuple[int, asyncio.Future[str | None]]] = {}
        # Invocations another replica follows that are not ours (yet): a queued run that this
        # replica takes later starts out watched. Oldest first; bounded.
        self._watched: dict[str, float] = {}
        self._idle = asyncio.Event()
        self._idle.set()
        self.draining = False
        """Set on shutdown: new runs are refused with ShuttingDownError."""

    # Lifecycle.

    async def start(self) -> None:
        """Listen for signals and start renewing leases and sweeping expired runs."""
        await self.notifier.start(self._on_signal)
        loop = asyncio.get_running_loop()
        # Two loops: sealing a lost run goes through the request pool and may wait there, and
        # that must never delay the renewal of this replica's own leases.
        self._tickers = [
            loop.create_task(self._every_third_lease(self.renew_leases, "renewal")),
            loop.create_task(self._every_third_lease(self.sweep, "sweep")),
        ]

    async def close(self) -> None:
        """Stop the background work (runs still driven by requests end with them)."""
        for ticker in self._tickers:
            ticker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await ticker
        self._tickers = []
        await self.notifier.close()
        await self.store.close()

    @property
    def active(self) -> list[ActiveRun]:
        """The runs this replica is driving."""
        return list(self._local.values())

    # Starting and ending a run.

    async def begin(
        self,
        key: SessionKey,
        invocation_id: str,
        *,
        strategy: MultitaskStrategy = MultitaskStrategy.REJECT,
        request: dict[str, Any] | None = None,
        live: bool = False,
        on_first_append: bool = False,
    ) -> ActiveRun:
        """Take the session for `invocation_id`, as `strategy` says when it is busy.

        With `enqueue` this waits (FIFO per session) until the run's turn comes. With
        `on_first_append` (strategy `reject`, on a store that supports it) the session is
        taken by the run's first append, in `fenced(run.claim)`, which raises
        RunInProgressError then: a round trip and a commit less per run. The caller must
        know that the run appends (the user's event) before any other work.

        Raises:
            RunInProgressError: the session is busy (strategy `reject`).
            SessionNotFoundError: no such session.
            ShuttingDownError: this replica is draining.
        """
        if self.draining:
            raise ShuttingDownError("The server is shutting down; retry on another replica.")
        if strategy is MultitaskStrategy.ENQUEUE:
            return await self._begin_queued(key, invocation_id, request or {})
        if on_first_append and strategy is MultitaskStrategy.REJECT and self.store.claims_on_append:
            return self._register(key, self._claim(invocation_id), live=live)
        attempts = _INTERRUPT_ATTEMPTS if strategy is MultitaskStrategy.INTERRUPT else 1
        for attempt in range(attempts):
            try:
                return await self._take(key, invocation_id, live=live)
            except RunInProgressError:
                if attempt + 1 == attempts:
                    raise
            await self._interrupt(key)
        raise AssertionError("unreachable")

    async def _take(self, key: SessionKey, invocation_id: str, *, live: bool = False) -> ActiveRun:
        if self.draining:
            raise ShuttingDownError("The server is shutting down; retry on another replica.")
        record = await self.store.begin(
            key, invocation_id, owner=self.replica_id, lease_seconds=self.lease_seconds
        )
        assert record.fence is not None
        claim = self._claim(invocation_id)
        claim.fence, claim.create_time = record.fence, record.create_time
        return self._register(key, claim, live=live)

    def _claim(self, invocation_id: str) -> SessionClaim:
        return SessionClaim(invocation_id, self.replica_id, self.lease_seconds)

    def _register(
        self, key: SessionKey, claim: SessionClaim, *, live: bool, driven: bool = True
    ) -> ActiveRun:
        """Make `claim`'s run one of this replica's (`driven`: by the current task)."""
        task = asyncio.current_task() if driven else None
        run = ActiveRun(key, claim.invocation_id, claim, task=task, live=live)
        if self._watched:
            run.remote_watchers = self._watched.pop(claim.invocation_id, None) is not None
        self._local[claim.invocation_id] = run
        self._idle.clear()
        return run

    def _forget(self, invocation_id: str) -> None:
        self._local.pop(invocation_id, None)
        if not self._local:
            self._idle.set()

    async def wait_idle(self, seconds: float) -> bool:
        """Wait until this replica drives no run; False if `seconds` passed first."""
        try:
            async with asyncio.timeout(seconds):
                await self._idle.wait()
        except TimeoutError:
            return False
        return True

    async def _interrupt(self, key: SessionKey) -> None:
        """Cancel the session's running run and wait (bounded) until it has ended."""
        running = await self.store.list_runs(key, status=RunStatus.RUNNING, limit=1, before=None)
        if running:
            with contextlib.suppress(RunFinishedError, RunNotFoundError):
                await self.cancel(key, running[0].invocation_id, wait=True)

    async def _begin_queued(
        self, key: SessionKey, invocation_id: str, request: dict[str, Any]
    ) -> ActiveRun:
        subscriber = self._subscribe(key)
        try:
            # Queued first, even on an idle session: the queue's order is then the order in
            # which requests reached the database, whoever takes the session in between.
            await self.store.enqueue(key, invocation_id, request)
            metrics.run_queued(key[0], 1)
            try:
                while True:
                    if await self._queue_head(key, since=next(self._ticks)) == invocation_id:
                        with contextlib.suppress(RunInProgressError):
                            return await self._take(key, invocation_id)
                    await self._wait_for_turn(key, invocation_id, subscriber)
            except BaseException:
                with anyio_shield():
                    await self._leave_queue(key, invocation_id)
                raise
            finally:
                metrics.run_queued(key[0], -1)
        finally:
            self._unsubscribe(key, subscriber)

    async def _queue_head(self, key: SessionKey, *, since: int) -> str | None:
        """Read the session's queue head, sharing a read that started after `since`.

        A run's end wakes every run queued on the session; they read the head once per
        replica instead of once each. A read is shared only with waiters that were woken (or
        enqueued) before it started, so none of them acts on a state older than its wake-up.
        """
        read = self._head_reads.get(key)
        if read is None or read[0] < since:
            future = asyncio.ensure_future(self.store.queue_head(key))
            read = (next(self._ticks), future)
            self._head_reads[key] = read

            def done(finished: asyncio.Future[str | None], entry: Any = read) -> None:
                if self._head_reads.get(key) is entry:
                    del self._head_reads[key]
                if not finished.cancelled():
                    finished.exception()  # retrieved: a waiter may have left meanwhile

            future.add_done_callback(done)
        return await asyncio.shield(read[1])

    async def _wait_for_turn(
        self, key: SessionKey, invocation_id: str, subscriber: _Subscriber
    ) -> None:
        """Wait until a run of the session ends (or leaves the queue).

        Raises:
            RunCancelledError: this queued run was cancelled meanwhile.
        """
        # The timeout is a safety net for a missed notification, not a poll.
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(self.lease_seconds):
                while True:
                    item = await subscriber.queue.get()
                    if item[0] == "resync":
                        break
                    if item[0] == "end":
                        if item[1] != invocation_id:
                            return
                        break  # about this very run: was it cancelled?
        record = await self.store.get(key, invocation_id)
        if record is None or record.status is not RunStatus.QUEUED:
            raise RunCancelledError(f"Run {invocation_id} was cancelled while queued.")

    async def _leave_queue(self, key: SessionKey, invocation_id: str) -> None:
        with contextlib.suppress(Exception):
            record = await self.store.request_cancel(key, invocation_id)
            if record is not None and record.status is RunStatus.CANCELLED:
                self._announce_end(key, invocation_id)

    def published(self, run: ActiveRun, event: Event) -> None:
        """Hand an event of `run` (stored or partial) to whoever is attached."""
        if not event.partial and event.seq is not None:
            run.last_seq = event.seq
            if run.remote_watchers:
                self.notifier.publish(("event", *run.key, run.invocation_id, event.seq))
        subscribers = self._subscribers.get(run.key)
        if subscribers:
            for subscriber in subscribers:
                subscriber.queue.put_nowait(("local", run.invocation_id, event))

    async def answer_open_calls(self, run: ActiveRun, response: dict[str, Any]) -> int:
        """Store `response` for each call `run` left open (while it still holds the session)."""
        runner = self._runner(run.key[0])
        if runner is None or run.claim.pending:
            return 0  # a run that never took its session wrote nothing
        with fenced(run.claim):
            return await runner.answer_open_calls(
                user_id=run.key[1],
                session_id=run.key[2],
                invocation_id=run.invocation_id,
                response=response,
                recent_events=_RECENT_EVENTS_FOR_REPAIR,
            )

    async def finish(
        self,
        run: ActiveRun,
        status: RunStatus,
        *,
        last_seq: int | None = None,
        error: dict[str, Any] | None = None,
    ) -> None:
        """Record the end of `run` and release its session; tell waiters and watchers.

        When the database is unreachable the run is kept and sealed once it answers again.
        A last event the session store held back (`SessionClaim.defer_author`) is stored in
        the same statement.

        Raises:
            AgentServiceError: the held last event could not be stored (RunLostError,
                StaleSessionError; the run is not ended: finish it again with an error), or
                DatabaseUnavailableError (both are stored when the database answers again).
        """
        self._forget(run.invocation_id)
        fence = run.fence
        if fence is None:
            return  # never took its session: there is no row to end, and nothing was stored
        seq = last_seq if last_seq is not None else run.last_seq
        signal = ("end", *run.key, run.invocation_id)
        announce = self.notifier.inline_end() if self.store.announces_inline else None
        held = run.claim.held is not None
        try:
            await self.store.finish(
                run.key,
                run.invocation_id,
                fence=fence,
                status=status,
                last_seq=seq,
                error=error,
                announce=announce,
                watched=run.remote_watchers,
                claim=run.claim,
            )
        except DatabaseUnavailableError:
            logger.warning(
                "run end not stored (database unavailable), retrying session=%s invocation=%s",
                run.key[2],
                run.invocation_id,
            )
            self._unsealed.append((run, status, error))
            if held:
                raise  # its last event is not stored yet either: the caller says so
            return
        self._signal_local(signal)
        if announce is None:
            self.notifier.publish(signal)

    def _announce_end(self, key: SessionKey, invocation_id: str) -> None:
        self._signal_local(("end", *key, invocation_id))
        self.notifier.publish(("end", *key, invocation_id))

    # Cancel.

    async def cancel(self, key: SessionKey, invocation_id: str, *, wait: bool = False) -> RunRecord:
        """Stop a run wherever it runs (a queued one leaves the queue).

        Raises:
            RunNotFoundError: no such run.
            RunFinishedError: it already ended.
        """
        record = await self.store.get(key, invocation_id)
        if record is None:
            raise RunNotFoundError(invocation_id)
        if record.status.final:
            raise RunFinishedError(f"Run {invocation_id} already ended ({record.status.value}).")
        subscriber = self._subscribe(key) if wait else None
        try:
            updated = await self.store.request_cancel(key, invocation_id)
            if updated is None:
                raise RunNotFoundError(invocation_id)
            if updated.status is RunStatus.CANCELLED:  # it was queued
                self._announce_end(key, invocation_id)
                return updated
            if updated.status.final:
                return updated
            local = self._local.get(invocation_id)
            if local is not None:
                self._stop(local, CancelReason.CANCELLED)
            else:
                self.notifier.publish(("cancel", *key, invocation_id))
            if subscriber is None:
                return updated
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(self.lease_seconds + 5):
                    while True:
                        item = await subscriber.queue.get()
                        if item[0] == "end" and item[1] == invocation_id:
                            break
                        if item[0] == "resync":
                            current = await self.store.get(key, invocation_id)
                            if current is not None and current.status.final:
                                break
            final = await self.store.get(key, invocation_id)
            return final or updated
        finally:
            if subscriber is not None:
                self._unsubscribe(key, subscriber)

    def _stop(self, run: ActiveRun, reason: CancelReason) -> None:
        if run.cancel_reason is None:
            run.cancel_reason = reason
        if run.task is not None and not run.task.done():
            run.task.cancel()

    def stop_all(self, reason: CancelReason) -> int:
        """Stop every run of this replica (shutdown); return how many."""
        runs = list(self._local.values())
        for run in runs:
            self._stop(run, reason)
        return len(runs)

    def stop_live(self, reason: CancelReason) -> int:
        """Stop this replica's live connections; return how many."""
        runs = [run for run in self._local.values() if run.live]
        for run in runs:
            self._stop(run, reason)
        return len(runs)

    # Reading runs.

    async def get(self, key: SessionKey, invocation_id: str) -> RunRecord:
        """Return one run.

        Raises:
            RunNotFoundError: no such run.
        """
        record = await self.store.get(key, invocation_id)
        if record is None:
            raise RunNotFoundError(invocation_id)
        return record

    async def list_runs(
        self, key: SessionKey, *, status: RunStatus | None, limit: int, before: Cursor | None
    ) -> list[RunRecord]:
        """Return runs of the session, newest first."""
        return await self.store.list_runs(key, status=status, limit=limit, before=before)

    async def ensure_idle(self, key: SessionKey) -> None:
        """Refuse work that must not overlap a run, on any replica.

        Raises:
            RunInProgressError: a run is active on the session.
        """
        if await self.store.list_runs(key, status=RunStatus.RUNNING, limit=1, before=None):
            raise RunInProgressError(f"A run is already in progress on session {key[2]}.")

    async def follow(
        self, key: SessionKey, invocation_id: str, *, after_seq: int, keepalive: float
    ) -> AsyncIterator[Frame]:
        """Yield the run's stored events after `after_seq`, then its live ones, then its end.

        Raises:
            RunNotFoundError: no such run (before anything is yielded).
        """
        subscriber = self._subscribe(key)
        try:
            record = await self.get(key, invocation_id)
            if invocation_id not in self._local:
                if record.status is RunStatus.RUNNING:
                    await self._watch_remote(record, subscriber)
                elif record.status is RunStatus.QUEUED:
                    # Whichever replica takes it later announces it (no owner to answer yet).
                    self.notifier.publish(("watch", *key, invocation_id))
            cursor = after_seq
            for seq, raw in await self.store.invocation_events(key, invocation_id, cursor):
                cursor = seq
                yield Frame("stored", seq=seq, json=raw)
            while not record.status.final:
                try:
                    async with asyncio.timeout(keepalive):
                        item = await subscriber.queue.get()
                except TimeoutError:
                    yield Frame("ping")
                    # Safety net for a lost notification (e.g. a dead owner's run was sealed
                    # while our listener reconnected); one indexed read per keep-alive.
                    record = await self.get(key, invocation_id)
                    continue
                kind = item[0]
                if kind == "local" and item[1] == invocation_id:
                    event: Event = item[2]
                    if event.partial or event.seq is None:
                        yield Frame("partial", json=event.to_json())
                    elif event.seq > cursor:
                        cursor = event.seq
                        yield Frame("stored", seq=event.seq, json=event.to_json())
                elif (kind == "event" and item[1] == invocation_id and item[2] > cursor) or (
                    kind in ("end", "resync") and item[1:2] in ((invocation_id,), ())
                ):
                    for seq, raw in await self.store.invocation_events(key, invocation_id, cursor):
                        cursor = seq
                        yield Frame("stored", seq=seq, json=raw)
                    if kind != "event":
                        record = await self.get(key, invocation_id)
            yield Frame("end", record=record)
        finally:
            self._unsubscribe(key, subscriber)

    async def _watch_remote(self, record: RunRecord, subscriber: _Subscriber) -> None:
        """Ask the owner to announce the run's events; wait (bounded) for its answer."""
        self.notifier.publish(("watch", *record.key, record.invocation_id))
        deferred: list[tuple[Any, ...]] = []
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_WATCH_ACK_SECONDS):
                while True:
                    item = await subscriber.queue.get()
                    if item[0] == "watching" and item[1] == record.invocation_id:
                        break
                    deferred.append(item)
                    if item[0] == "end" and item[1] == record.invocation_id:
                        break
        for item in deferred:
            subscriber.queue.put_nowait(item)

    # Signals.

    def _subscribe(self, key: SessionKey) -> _Subscriber:
        subscriber = _Subscriber()
        self._subscribers.setdefault(key, set()).add(subscriber)
        return subscriber

    def _unsubscribe(self, key: SessionKey, subscriber: _Subscriber) -> None:
        subscribers = self._subscribers.get(key)
        if subscribers is not None:
            subscribers.discard(subscriber)
            if not subscribers:
                del self._subscribers[key]

    def _signal_local(self, signal: Signal) -> None:
        """Queue `(kind, invocation_id, *extra)` for the subscribers of the signal's session."""
        kind, key, rest = signal[0], tuple(signal[1:4]), signal[4:]
        for subscriber in self._subscribers.get(key, ()):
            subscriber.queue.put_nowait((kind, *rest))

    def _on_signal(self, signal: Signal) -> None:
        kind = signal[0]
        if kind == "resync":
            for subscribers in self._subscribers.values():
                for subscriber in subscribers:
                    subscriber.queue.put_nowait(("resync",))
            return
        if len(signal) < 5:
            return
        invocation_id = signal[4]
        local = self._local.get(invocation_id)
        if kind == "cancel":
            if local is not None:
                local.remote_watchers = True  # the canceller may wait for the end
                self._stop(local, CancelReason.CANCELLED)
            return
        if kind == "watch":
            if local is not None:
                local.remote_watchers = True
                self.notifier.publish(("watching", *local.key, invocation_id))
            else:
                self._remember_watch(invocation_id)
            return
        if local is not None and kind in ("event", "end", "watching"):
            return  # our own run: local subscribers already have it
        self._signal_local(signal)

    def _remember_watch(self, invocation_id: str) -> None:
        now = time.monotonic()
        watched = self._watched
        watched.pop(invocation_id, None)
        watched[invocation_id] = now
        while watched:
            oldest, since = next(iter(watched.items()))
            if len(watched) <= _WATCHED_MAX and now - since <= _WATCHED_SECONDS:
                break
            del watched[oldest]

    # Leases.

    async def _every_third_lease(self, work: Callable[[], Awaitable[None]], name: str) -> None:
        interval = max(self.lease_seconds / 3, 0.05)
        while True:
            await asyncio.sleep(interval)  # the lease clock: renewal is periodic by nature
            try:
                await work()
            except DatabaseUnavailableError as exc:
                logger.warning("run lease %s skipped (database unavailable) error=%s", name, exc)
            except Exception:
                logger.exception("run lease %s failed", name)

    async def tick(self) -> None:
        """Renew this replica's leases, store run ends the database missed, seal lost runs."""
        await self.renew_leases()
        await self.sweep()

    async def renew_leases(self) -> None:
        """Extend the lease of every run this replica drives."""
        running = [run.invocation_id for run in self._local.values()]
        # Runs that ended while the database was away keep their lease until their end is
        # stored (by the sweep, as soon as it answers), rather than being sealed as lost.
        running += [run.invocation_id for run, _, _ in self._unsealed]
        await self.store.renew(self.replica_id, running, self.lease_seconds)

    async def sweep(self) -> None:
        """Store run ends the database missed, then seal the runs whose lease expired."""
        while self._unsealed:
            run, status, error = self._unsealed[0]
            try:
                await self.answer_open_calls(run, CANCELLED_RESPONSE)
            except DatabaseUnavailableError:
                raise  # kept for the next sweep
            except AgentServiceError as exc:
                # Sealed by another replica meanwhile (run_lost), or the session is gone:
                # nothing left to answer, and the finish below changes nothing then.
                logger.info(
                    "run end after an outage: calls not answered session=%s invocation=%s code=%s",
                    run.key[2],
                    run.invocation_id,
                    exc.code,
                )
            assert run.fence is not None  # only runs that took their session are kept
            finish = functools.partial(
                self.store.finish,
                run.key,
                run.invocation_id,
                fence=run.fence,
                status=status,
                last_seq=run.last_seq,
                error=error,
            )
            try:
                await finish(claim=run.claim)
            except DatabaseUnavailableError:
                raise  # kept for the next sweep
            except AgentServiceError:
                await finish()  # its held last event was refused (sealed meanwhile): without it
            self._unsealed.pop(0)
            self._announce_end(run.key, run.invocation_id)
        for record in await self.store.expired(time.time()):
            if record.invocation_id in self._local:
                continue  # ours and alive: renewed on the next tick
            await self._seal_lost(record)

    async def _seal_lost(self, record: RunRecord) -> None:
        """Take over a dead replica's run, answer the calls it left open, end it as lost."""
        fence = await self.store.take_over(
            record, owner=self.replica_id, lease_seconds=self.lease_seconds
        )
        if fence is None:
            return  # sealed by another replica meanwhile
        metrics.lease_stolen(record.key[0])
        logger.warning(
            "sealing a lost run session=%s invocation=%s owner=%s",
            record.key[2],
            record.invocation_id,
            record.owner,
        )
        claim = self._claim(record.invocation_id)
        claim.fence = fence
        run = self._register(record.key, claim, live=False, driven=False)
        run.last_seq = record.last_seq
        # Its followers and waiters asked the dead owner: announce the end to every replica.
        run.remote_watchers = True
        try:
            await self.answer_open_calls(run, LOST_RESPONSE)
        except BaseException:
            self._forget(record.invocation_id)  # expires again: someone retries
            raise
        await self.finish(run, RunStatus.ERROR, error=LOST_PROBLEM)
        metrics.run_sealed(record.key[0])

    def _runner(self, app_name: str) -> Runner | None:
        try:
            return self._runners(app_name)
        except AgentServiceError:
            return None


@contextlib.contextmanager
def anyio_shield() -> Any:
    """Shield cleanup from an enclosing cancellation (asyncio and anyio scopes alike)."""
    import anyio

    with anyio.CancelScope(shield=True), anyio.move_on_after(5):
        yield
