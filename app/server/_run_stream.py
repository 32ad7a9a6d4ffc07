"""The response of `POST ...:run`: drives one Runner invocation and streams its events.

Both variants (SSE and JSON) are ASGI responses that run the whole invocation in the request's
own task, so the runner's generator never changes task. The first event is pulled *before* the
response starts: a missing session, a run already in progress or a bad message then raises
before any byte is sent, and the app's error handlers answer with the proper 4xx. This saves
the separate existence query a dependency would need on every run. Once the runner stored the
user's event, though, every failure is reported in-band (`event: error` then `end`; in JSON
mode the problem body with the events so far): a plain HTTP error means nothing was stored.

Before the run starts, the runs layer takes the session for the invocation (`RunManager.begin`:
409 `run_in_progress` before anything is stored, or a wait in the queue), and the Runner is
driven inside `fenced(claim)`, so its appends are refused once the run lost the session. On
Postgres a `reject` run's session is taken by the statement that stores the user's event (see
`app.sessions.fence`); its 409 then comes from `_first_event`, still before anything is stored. The
run is recorded as ended *before* the last frame is sent, so a client may start the next run
as soon as it reads `end`.

A second task owned by the response (cancelled when the run ends) watches for the client
disconnecting (and, for SSE, sends `: ping` comments while the run is idle). A disconnect
cancels the run (unless `onDisconnect` is `continue`: the run then finishes unobserved); a
cancel through the runs layer does the same. Cleanup then runs shielded and bounded, and
answers any function call the run left open so the session stays usable.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

import anyio
from google.genai import types
from starlette.responses import Response
from starlette.types import Receive, Scope, Send

from app.agents import LlmAgent, RunConfig
from app.errors import (
    AgentServiceError,
    AlreadyExistsError,
    DatabaseUnavailableError,
    RunCancelledError,
    SessionNotFoundError,
)
from app.events.event import Event
from app.runners import Runner
from app.runs import (
    CANCELLED_RESPONSE,
    ActiveRun,
    CancelReason,
    MultitaskStrategy,
    RunManager,
    RunStatus,
)
from app.runs.manager import LOST_PROBLEM
from app.server.errors import problem_for
from app.server.quotas import RunQuota
from app.server.wire import NativeEncoder, RunEnd, StreamEncoder
from app.sessions.fence import fenced

logger = logging.getLogger(__name__)

CLEANUP_TIMEOUT_SECONDS = 5.0
"""Bound on the shielded cleanup after a cancelled run."""

DISCONNECTED_RESPONSE = {"error": "cancelled: the client disconnected"}
"""Function response stored for calls a disconnected run left unanswered."""

_RECENT_EVENTS_FOR_REPAIR = 20


@dataclass
class RunArgs:
    """What one run needs, resolved from the request by the route."""

    runs: RunManager
    runner: Runner
    app_name: str
    user_id: str
    session_id: str
    new_message: types.Content | None
    state_delta: dict[str, Any] | None
    invocation_id: str
    resume: bool
    """Whether `invocation_id` came from the client (a resumed invocation)."""
    run_config: RunConfig
    create_session: bool
    keepalive_seconds: float = 15.0
    strategy: MultitaskStrategy = MultitaskStrategy.REJECT
    continue_on_disconnect: bool = False
    request: dict[str, Any] | None = None
    """The request as JSON, stored with a queued run."""
    quota: RunQuota | None = None
    """The user's quotas for this run (None: no quota set)."""

    @property
    def location(self) -> str:
        """The run's URL path (`Location` header)."""
        parts = (self.app_name, self.user_id, self.session_id, self.invocation_id)
        app, uid, sid, inv = (quote(part, safe="") for part in parts)
        return f"/apps/{app}/users/{uid}/sessions/{sid}/runs/{inv}"

    def run_headers(self) -> list[tuple[bytes, bytes]]:
        """`Location`, `X-Invocation-Id` and, with a run rate set, `RateLimit-*`."""
        headers = [
            (b"location", self.location.encode()),
            (b"x-invocation-id", quote(self.invocation_id, safe="").encode()),
        ]
        if self.quota is not None:
            headers += self.quota.headers
        return headers


@dataclass
class _Progress:
    """What the run produced so far (for the end frame and the cleanup)."""

    invocation_id: str | None = None
    last_seq: int | None = None
    events: list[Event] = field(default_factory=list)
    user_event_stored: bool = False


class _RunResponse(Response):
    """Common machinery; subclasses decide how events reach the client."""

    def __init__(self, args: RunArgs) -> None:
        # Starlette's Response.__init__ would render a body; this response streams its own.
        self.args = args
        self.status_code = 200
        self.background = None
        self.progress = _Progress(invocation_id=args.invocation_id)
        self.started = False
        self.disconnected = False
        self.last_send = time.monotonic()
        self._send: Send | None = None
        self._early_error: BaseException | None = None
        self.run: ActiveRun | None = None
        self._held_event: Event | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self._send = send
        task = asyncio.current_task()
        assert task is not None
        # A plain asyncio task, not an anyio task group: this runs once per request and the
        # task group's cancel-scope machinery cost ~10% of the route's CPU.
        watcher = asyncio.get_running_loop().create_task(self._watch(receive, task))
        try:
            await self._drive()
        except asyncio.CancelledError:
            # Absorb only the cancellation we requested (client gone, run cancelled).
            stopped = self.run is not None and self.run.cancel_reason is not None
            if not (self.disconnected or stopped) or task.uncancel() > 0:
                raise
        finally:
            watcher.cancel()
        if self._early_error is not None:
            # Nothing was sent: the app's error handlers answer with the right status.
            raise self._early_error

    # Subclass hooks.

    async def _on_start(self) -> None:
        """Called once the first event is in hand, before it is delivered."""

    async def _on_event(self, event: Event) -> None:
        """Deliver one event."""

    async def _on_finish(self, error: BaseException | None) -> None:
        """Called after the last event, or after an error once the response started."""

    async def _on_idle(self) -> None:
        """Called by the watcher when nothing was sent for `keepalive_seconds`."""

    # The run.

    def _open(self) -> Any:
        args = self.args
        return args.runner.run_async(
            user_id=args.user_id,
            session_id=args.session_id,
            invocation_id=args.invocation_id,
            new_message=args.new_message,
            state_delta=args.state_delta,
            run_config=args.run_config,
            on_user_event=self._on_user_event,
            new_invocation=not args.resume,
        )

    def _on_user_event(self, event: Event) -> None:
        """The run wrote to the session: from now on its failures are reported in-band."""
        self.progress.user_event_stored = True
        if self.progress.invocation_id is None:
            self.progress.invocation_id = event.invocation_id

    async def _first_event(self) -> tuple[Any, Event | None]:
        """Start the run and pull its first event; raises before anything is sent."""
        events = self._open()
        try:
            return events, await events.__anext__()
        except StopAsyncIteration:
            return events, None
        except SessionNotFoundError:
            await events.aclose()
            if not self.args.create_session:
                raise
        args = self.args
        with contextlib.suppress(AlreadyExistsError):  # created concurrently: run on it
            await args.runner.session_service.create_session(
                app_name=args.app_name, user_id=args.user_id, session_id=args.session_id
            )
        events = self._open()
        try:
            return events, await events.__anext__()
        except StopAsyncIteration:
            return events, None

    async def _begin(self) -> ActiveRun:
        """Take the session for this invocation (creating the session when asked to)."""
        args = self.args
        key = (args.app_name, args.user_id, args.session_id)
        begin = args.runs.begin
        # The user's event, the Runner's first write, takes the session (a round trip and a
        # commit less). Not when the Runner may not store one (a resumed invocation finds it
        # stored) or creates a missing session itself (its first write is then the create).
        on_first_append = (
            (args.new_message is not None or bool(args.state_delta))
            and not args.resume
            and not args.runner.auto_create_session
        )
        try:
            return await begin(
                key,
                args.invocation_id,
                strategy=args.strategy,
                request=args.request,
                on_first_append=on_first_append,
            )
        except SessionNotFoundError:
            if not (args.create_session or args.runner.auto_create_session):
                raise
        with contextlib.suppress(AlreadyExistsError):  # created concurrently: run on it
            await args.runner.session_service.create_session(
                app_name=args.app_name, user_id=args.user_id, session_id=args.session_id
            )
        return await begin(key, args.invocation_id, strategy=args.strategy, request=args.request)

    async def _drive(self) -> None:
        quota = self.args.quota
        if quota is None:
            await self._drive_admitted()
            return
        try:
            await quota.admit()  # before anything is stored; raises 429s
        except Exception as exc:  # noqa: BLE001 - answered by the app's error handlers
            await self._end_quota()
            if self.started:  # the idle watcher committed to 200 meanwhile: in-band
                await self._on_finish(exc)
            else:
                self._early_error = exc
            return
        try:
            await self._drive_admitted()
        finally:
            await self._end_quota()

    async def _end_quota(self) -> None:
        """Free the run's quota slot and record its tokens (once; before the last frame)."""
        quota = self.args.quota
        if quota is not None:
            with anyio.CancelScope(shield=True), anyio.move_on_after(CLEANUP_TIMEOUT_SECONDS):
                try:
                    await quota.end()
                except Exception:
                    logger.exception("recording quota use failed user=%s", self.args.user_id)

    async def _finish(self, run: ActiveRun, status: RunStatus, **fields: Any) -> None:
        """Record the end of the run, then free its quota (a client may start the next one)."""
        try:
            await self.args.runs.finish(run, status, **fields)
        finally:
            await self._end_quota()

    async def _end(self, run: ActiveRun, status: RunStatus, **fields: Any) -> bool:
        """`_finish` for a run that did not succeed: a held last event that cannot be stored
        is dropped, and the run ends without it. Return whether the end (and the event) was
        stored."""
        try:
            await self._finish(run, status, **fields)
        except DatabaseUnavailableError:
            return False  # the runs layer stores the end once the database answers again
        except AgentServiceError:
            await self._finish(run, status, **fields)  # the store dropped the event
            return False
        return True

    async def _complete(self, run: ActiveRun) -> BaseException | None:
        """End a run that succeeded, its held last event with it; return the error (in-band)
        that kept that event from being stored, or None."""
        try:
            await self._finish(run, RunStatus.COMPLETED, last_seq=self.progress.last_seq)
        except DatabaseUnavailableError as exc:
            return exc  # the runs layer stores the event and the end once it answers again
        except AgentServiceError as exc:
            _log_run_error(self.args, exc)
            await self._end(
                run, RunStatus.ERROR, last_seq=self.progress.last_seq, error=problem_for(exc)
            )
            return exc
        held, self._held_event = self._held_event, None
        if held is not None:
            await self._send_event(held)  # stored now: its frame comes before the end
        return None

    async def _drive_admitted(self) -> None:
        try:
            run = await self._begin()
        except Exception as exc:  # noqa: BLE001 - a 4xx before any byte, else in-band
            if not self.started:
                self._early_error = exc  # re-raised by __call__ before any byte
                return
            # The watcher started the stream while the request waited in the queue.
            if isinstance(exc, RunCancelledError):
                await self._on_cancelled()
                return
            _log_run_error(self.args, exc)
            await self._on_finish(exc)
            return
        self.run = run
        if isinstance(self.args.runner.agent, LlmAgent):
            # Its final response ends the run: the run's end is stored with it.
            run.claim.defer_author = self.args.runner.agent.name
        try:
            with fenced(run.claim):
                error = await self._drive_run(run)
        except asyncio.CancelledError:
            with anyio.CancelScope(shield=True), anyio.move_on_after(CLEANUP_TIMEOUT_SECONDS):
                reason = run.cancel_reason
                if reason is CancelReason.LOST:
                    await self._end(run, RunStatus.ERROR, error=LOST_PROBLEM)
                else:
                    await self._end(run, RunStatus.CANCELLED, last_seq=self.progress.last_seq)
                if not self.disconnected:
                    await self._start()
                    await self._on_cancelled()
            raise
        except BaseException:
            with anyio.CancelScope(shield=True), anyio.move_on_after(CLEANUP_TIMEOUT_SECONDS):
                await self._end(run, RunStatus.ERROR, error=problem_for(Exception()))
            raise
        if self._early_error is not None:
            await self._end(run, RunStatus.ERROR, error=problem_for(self._early_error))
            return
        if error is None:
            error = await self._complete(run)
        else:
            stored = await self._end(
                run, RunStatus.ERROR, last_seq=self.progress.last_seq, error=problem_for(error)
            )
            if stored and self._held_event is not None:
                await self._send_event(self._held_event)  # stored with the end: sent first
        await self._start()  # a run that failed before its first event still answers in-band
        await self._on_finish(error)

    async def _drive_run(self, run: ActiveRun) -> BaseException | None:
        """Drive the Runner; return the error it ended with (in-band), or None."""
        events: Any = None
        error: BaseException | None = None
        try:
            try:
                events, first = await self._first_event()
            except Exception as exc:
                if not self.started and not self.progress.user_event_stored:
                    self._early_error = exc  # nothing stored: __call__ re-raises it
                    return None
                raise  # stored, or the watcher already started the response: in-band
            await self._start()
            if first is not None:
                await self._deliver(first)
                async for event in events:
                    await self._deliver(event)
        except asyncio.CancelledError:
            # Shielded (an enclosing anyio scope may be cancelled too) and bounded.
            with anyio.CancelScope(shield=True), anyio.move_on_after(CLEANUP_TIMEOUT_SECONDS):
                await self._cleanup_cancelled(events, run)
            raise
        except Exception as exc:  # noqa: BLE001 - reported in-band
            error = exc
            _log_run_error(self.args, exc)
        if events is not None:
            await events.aclose()
        return error

    async def _start(self) -> None:
        """Send the response head once (the run or the idle watcher may get here first)."""
        if not self.started:
            self.started = True  # set before awaiting: the other task must not start it too
            await self._on_start()

    async def _deliver(self, event: Event) -> None:
        if self.args.quota is not None:
            self.args.quota.observe(event)
        run = self.run
        held = None if run is None or run.claim.held is None else run.claim.held.event
        if self._held_event is not None and self._held_event is not held:
            # Stored by this event's append after all: it comes first.
            earlier, self._held_event = self._held_event, None
            await self._send_event(earlier)
        if event is held:
            # Not stored yet (see `SessionClaim.defer_author`): sent once it is.
            self._held_event = event
            return
        await self._send_event(event)

    async def _send_event(self, event: Event) -> None:
        progress = self.progress
        if event.seq is not None and not event.partial:
            progress.last_seq = event.seq
        if self.run is not None:
            self.args.runs.published(self.run, event)
        if not self.disconnected:
            await self._on_event(event)

    async def _cleanup_cancelled(self, events: Any, run: ActiveRun) -> None:
        """Stop the run and answer the calls it left open (while it still holds the session)."""
        if events is not None:
            try:
                await events.aclose()
            except Exception:
                logger.exception("closing a cancelled run failed session=%s", self.args.session_id)
        if run.cancel_reason is CancelReason.LOST:
            return  # the session is no longer ours to write; whoever sealed it answers
        response = DISCONNECTED_RESPONSE if run.cancel_reason is None else CANCELLED_RESPONSE
        try:
            answered = await self.args.runs.answer_open_calls(run, response)
        except Exception:
            logger.exception("repairing a cancelled run failed session=%s", self.args.session_id)
            return
        if answered:
            logger.info(
                "answered calls left open by a cancelled run session=%s invocation=%s calls=%d",
                self.args.session_id,
                run.invocation_id,
                answered,
            )

    async def _on_cancelled(self) -> None:
        """Tell a still-connected client that the run was cancelled (server shutdown)."""

    async def _watch(self, receive: Receive, run_task: asyncio.Task[Any]) -> None:
        """Cancel the run when the client goes away; call `_on_idle` while it is quiet."""
        keepalive = self.args.keepalive_seconds
        while True:
            wait = max(keepalive - (time.monotonic() - self.last_send), 0.01)
            try:
                async with asyncio.timeout(wait):
                    message = await receive()
            except TimeoutError:
                if time.monotonic() - self.last_send >= keepalive:
                    await self._on_idle()
                continue
            if message["type"] == "http.disconnect":
                self.disconnected = True
                if not self.args.continue_on_disconnect or self.run is None:
                    run_task.cancel()
                return

    async def _send_bytes(self, body: bytes) -> None:
        assert self._send is not None
        self.last_send = time.monotonic()
        if not self.disconnected:
            await self._send({"type": "http.response.body", "body": body, "more_body": True})


class SSERunResponse(_RunResponse):
    """Streams the run through a protocol's `StreamEncoder` (native `:run` framing by default)."""

    media_type = "text/event-stream"

    def __init__(self, args: RunArgs, encoder: StreamEncoder | None = None) -> None:
        super().__init__(args)
        self.encoder = encoder if encoder is not None else NativeEncoder()

    async def _on_start(self) -> None:
        assert self._send is not None
        headers = self.encoder.headers + self.args.run_headers()
        await self._send({"type": "http.response.start", "status": 200, "headers": headers})
        opening = self.encoder.open()
        if opening:
            await self._send_bytes(opening)

    async def _on_event(self, event: Event) -> None:
        data = self.encoder.event(event)
        if data:
            await self._send_bytes(data)

    async def _on_idle(self) -> None:
        # A run still waiting for its first event commits to 200 here, so that proxies and
        # clients see the stream alive; errors from then on are in-band.
        await self._start()
        await self._send_bytes(self.encoder.ping())

    async def _on_finish(self, error: BaseException | None) -> None:
        if error is None:
            end = RunEnd(self.args.invocation_id, self.progress.last_seq, "completed")
        else:
            problem = problem_for(error)
            end = RunEnd(self.args.invocation_id, self.progress.last_seq, "error", problem)
        await self._send_last(self.encoder.close(end))

    async def _on_cancelled(self) -> None:
        end = RunEnd(self.args.invocation_id, self.progress.last_seq, "cancelled")
        await self._send_last(self.encoder.close(end))

    async def _send_last(self, body: bytes) -> None:
        assert self._send is not None
        if not self.disconnected:
            await self._send({"type": "http.response.body", "body": body, "more_body": False})


class JSONRunResponse(_RunResponse):
    """Collects the run's stored events and answers `{"events": [...]}` when it ends."""

    media_type = "application/json"

    def __init__(self, args: RunArgs) -> None:
        super().__init__(args)
        self._encoded: list[bytes] = []

    async def _on_event(self, event: Event) -> None:
        if not event.partial:
            self._encoded.append(event.to_json().encode())

    def _success_body(self, events: bytes) -> bytes:
        """The body of a run that completed, from its events as a JSON array."""
        return b'{"events":' + events + b"}"

    async def _on_cancelled(self) -> None:
        await self._on_finish(RunCancelledError("The run was cancelled."))

    async def _on_finish(self, error: BaseException | None) -> None:
        if self.disconnected:
            return
        events = b"[" + b",".join(self._encoded) + b"]"
        if error is None:
            status = 200
            media_type = b"application/json"
            body = self._success_body(events)
        else:
            problem = problem_for(error)
            status = problem["status"]
            media_type = b"application/problem+json"
            body = json.dumps(problem).encode()[:-1] + b',"events":' + events + b"}"
        assert self._send is not None
        await self._send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", media_type),
                    (b"content-length", str(len(body)).encode()),
                    *self.args.run_headers(),
                ],
            }
        )
        await self._send({"type": "http.response.body", "body": body, "more_body": False})


def _log_run_error(args: RunArgs, exc: BaseException) -> None:
    if isinstance(exc, AgentServiceError) and problem_for(exc)["status"] != 500:
        logger.warning(
            "run failed app=%s session=%s code=%s error=%s",
            args.app_name,
            args.session_id,
            exc.code,
            exc,
        )
    else:
        logger.error("run failed app=%s session=%s", args.app_name, args.session_id, exc_info=exc)
