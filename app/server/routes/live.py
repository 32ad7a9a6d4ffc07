"""Live: `WS /apps/{app}/users/{uid}/sessions/{sid}/live`, bidirectional audio over a WebSocket.

The protocol is HTTP_API.md's "Live WebSocket protocol". `serve_live` is the machinery, shared
with the ADK-compatible `WS /adk/run_live` (`routes/adk.py`): a route only resolves its target
from the URL and picks a `LiveDialect` (error frames, close codes). Each connection runs three
tasks, owned by `_LiveConnection.serve` (cancelled and awaited before the route returns):

    reader   client frames -> LiveRequestQueue (binary frames are PCM16 16 kHz audio)
    run      Runner.run_live -> outbound queue (one JSON text frame per event)
    writer   outbound queue -> client

Limits (module constants, documented in the README):

- A client frame over `MAX_FRAME_BYTES` gets an error frame and is dropped; uvicorn itself
  refuses frames over its `ws_max_size` (16 MiB) with close code 1009.
- The outbound queue holds `OUTBOUND_FRAMES` frames (~10 s of model audio). A client that
  reads slower than the model speaks fills it; the connection is then closed with 1013
  ("try again later") rather than buffering without bound. The session stays valid.

Endings: `{"close": true}` lets the run finish, flushes what is queued and closes with 1000.
A client that disconnects (or sends a close frame) cancels the run at once, which closes the
model connection; function calls the run left unanswered get an error response stored, so
the session stays usable for later runs.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import anyio
from fastapi import APIRouter, WebSocket
from google.genai import types
from pydantic import ValidationError
from starlette.datastructures import QueryParams
from starlette.websockets import WebSocketState

from app._genai_enums import strict_enums
from app.agents import LiveRequest, LiveRequestQueue, RunConfig
from app.errors import AlreadyExistsError, InvalidRequestError, SessionNotFoundError
from app.events.event import Event, new_invocation_id
from app.ids import SESSION_ID_RULE, is_valid_segment_id
from app.runners import Runner
from app.runs import CancelReason, RunStatus
from app.server.deps import Services, ServicesDep
from app.server.errors import problem_body, problem_for, status_of
from app.server.quotas import RunQuota
from app.server.text_checks import (
    FORBIDDEN_TEXT_MSG,
    find_forbidden,
    forbidden_text_error,
    may_hold_forbidden,
    printable,
)
from app.sessions.fence import fenced

logger = logging.getLogger(__name__)

router = APIRouter(tags=["live"])

MAX_FRAME_BYTES = 256 * 1024
"""Largest client frame accepted (text or binary); larger ones get an error frame."""

OUTBOUND_FRAMES = 256
"""Frames queued for a client before it counts as too slow (closed with 1013)."""

INPUT_AUDIO_MIME = "audio/pcm;rate=16000"
"""What a binary client frame holds: 16-bit little-endian mono PCM at 16 kHz."""

CANCELLED_RESPONSE = {"error": "cancelled: the client disconnected"}
"""Function response stored for calls a disconnected live run left unanswered."""

CLOSE_NORMAL = 1000
CLOSE_POLICY = 1008
CLOSE_INTERNAL = 1011
CLOSE_RESTART = 1012
CLOSE_TRY_AGAIN = 1013
CLOSE_BAD_REQUEST = 4400
CLOSE_NOT_FOUND = 4404

_RUN_END_TIMEOUT = 1.0
_FLUSH_TIMEOUT = 2.0
_REPAIR_TIMEOUT = 5.0
_MODALITIES = frozenset({"AUDIO", "TEXT"})
_TRUE = frozenset({"true", "1", "yes"})
_FALSE = frozenset({"false", "0", "no", ""})


@dataclass(frozen=True)
class LiveTarget:
    """What one live connection serves, resolved from its URL."""

    app: str
    user_id: str
    session_id: str
    run_config: RunConfig
    create_session: bool = False


@dataclass(frozen=True)
class LiveDialect:
    """How a live protocol reports errors: its error frame and its close codes."""

    error_frame: Callable[[dict[str, Any]], str]
    close_code: Callable[[BaseException], int]


@router.websocket("/apps/{app}/users/{uid}/sessions/{sid}/live")
async def live(websocket: WebSocket, app: str, uid: str, sid: str, services: ServicesDep) -> None:
    """Relay a live session between the client and the app's agent; see HTTP_API.md."""

    def target() -> LiveTarget:
        modalities, create = _parse_query(websocket.query_params)
        for name, value in (("app", app), ("uid", uid), ("sid", sid)):
            _check_id(name, value)
        return LiveTarget(app, uid, sid, RunConfig(response_modalities=modalities), create)

    await serve_live(websocket, services, target, NATIVE_DIALECT)


async def serve_live(
    websocket: WebSocket,
    services: Services,
    resolve: Callable[[], LiveTarget],
    dialect: LiveDialect,
) -> None:
    """Serve one live WebSocket: accept, take the session's run, relay until either side ends.

    `resolve` reads the connection's target from its URL (raising for bad parameters); every
    setup failure becomes an error frame and a close code of `dialect`. The connection holds
    the session's run (on every replica) until it closes.
    """
    # Accept first: close codes (4404, 4400, ...) can only be sent on an open WebSocket.
    await websocket.accept()
    runs = services.runs
    quota: RunQuota | None = None
    try:
        target = resolve()
        app, uid, sid = target.app, target.user_id, target.session_id
        runner = services.runners.runner(app)
        quota = services.quota_for(uid)
        if quota is not None:
            await quota.admit()  # a live connection is a run; before anything is stored
        create = target.create_session or runner.auto_create_session
        await _ensure_session(runner, uid, sid, create=create)
        # A live connection is an active run of the session, on every replica.
        active = await runs.begin((app, uid, sid), new_invocation_id(), live=True)
    except Exception as exc:  # noqa: BLE001 - every setup failure becomes a close code
        if quota is not None:
            await _end_quota(quota)
        await _refuse(websocket, exc, dialect)
        return
    run_config = target.run_config
    modalities = ",".join(run_config.response_modalities or [])
    logger.info("live opened app=%s session=%s modalities=%s", app, sid, modalities)
    outcome: list[RunStatus] = []

    async def release(status: RunStatus = RunStatus.COMPLETED) -> None:
        # Before the close frame: a client may reconnect as soon as it sees the close.
        if not outcome:
            outcome.append(status)
            with anyio.CancelScope(shield=True), anyio.move_on_after(_REPAIR_TIMEOUT):
                await runs.finish(active, status)
            if quota is not None:
                await _end_quota(quota)

    try:
        with fenced(active.claim):  # the connection's tasks inherit it
            connection = _LiveConnection(
                websocket, runner, uid, sid, run_config, release, dialect, quota
            )
            reason = await connection.serve()
    except asyncio.CancelledError:
        task = asyncio.current_task()
        if active.cancel_reason is None or task is None or task.uncancel() > 0:
            raise
        # Stopped by the runs layer: a drain (1012, reconnect elsewhere) or a cancel.
        shutdown = active.cancel_reason is CancelReason.SHUTDOWN
        await release(RunStatus.CANCELLED)  # stopped, not ended by the client
        with contextlib.suppress(Exception):  # the client may be gone
            await websocket.close(CLOSE_RESTART if shutdown else CLOSE_NORMAL, "run stopped")
        reason = "shutdown" if shutdown else "cancelled"
    finally:
        await release()
    logger.info("live closed app=%s session=%s reason=%s", app, sid, reason)


async def _end_quota(quota: RunQuota) -> None:
    """Free the connection's active slot and record its tokens (shielded, bounded)."""
    with anyio.CancelScope(shield=True), anyio.move_on_after(_REPAIR_TIMEOUT):
        try:
            await quota.end()
        except Exception:
            logger.exception("recording live quota use failed user=%s", quota.user_id)


def _parse_query(params: QueryParams) -> tuple[list[str], bool]:
    """Return (response modalities, createSession) from the query string.

    Raises:
        InvalidRequestError: an unknown modality or a createSession that is not a bool.
    """
    raw = params.get("modalities")
    modalities = ["AUDIO"]
    if raw is not None:
        modalities = list(dict.fromkeys(m.strip().upper() for m in raw.split(",")))
        if not modalities or not set(modalities) <= _MODALITIES:
            raise InvalidRequestError(
                f"modalities must be AUDIO, TEXT or a comma list of them, got {raw[:40]!r}."
            )
    flag = params.get("createSession", params.get("create_session", "false")).strip().lower()
    if flag not in _TRUE | _FALSE:
        raise InvalidRequestError(f"createSession must be true or false, got {flag[:20]!r}.")
    return modalities, flag in _TRUE


def _check_id(name: str, value: str) -> None:
    if not is_valid_segment_id(value):
        raise InvalidRequestError(f"Invalid {name}: {SESSION_ID_RULE}.")


async def _ensure_session(runner: Runner, uid: str, sid: str, *, create: bool) -> None:
    service = runner.session_service
    session = await service.get_session_shared(
        app_name=runner.app_name, user_id=uid, session_id=sid
    )
    if session is not None:
        return
    if not create:
        raise SessionNotFoundError(sid)
    with contextlib.suppress(AlreadyExistsError):  # created concurrently: use it
        await service.create_session(app_name=runner.app_name, user_id=uid, session_id=sid)


def close_code(exc: BaseException) -> int:
    """Return the WebSocket close code for an error (HTTP_API.md)."""
    status = status_of(exc)
    if status == 404:
        return CLOSE_NOT_FOUND
    if status in (400, 413, 415):
        return CLOSE_BAD_REQUEST
    if status in (409, 422, 429):  # a run in progress; a model-call limit or quota reached
        return CLOSE_POLICY
    return CLOSE_INTERNAL


def _reason(exc: BaseException) -> str:
    """A short close reason: the problem's detail, cut to the 123 bytes a close frame allows."""
    detail = str(problem_for(exc)["detail"])
    return detail.encode()[:120].decode(errors="ignore")


def _error_frame(problem: dict[str, Any]) -> str:
    return json.dumps({"error": problem})


NATIVE_DIALECT = LiveDialect(error_frame=_error_frame, close_code=close_code)
"""Our own live protocol: `{"error": <problem>}` frames, 44xx close codes (HTTP_API.md)."""


async def _refuse(websocket: WebSocket, exc: BaseException, dialect: LiveDialect) -> None:
    code = dialect.close_code(exc)
    if code == CLOSE_INTERNAL:
        logger.error("live setup failed error=%r", exc)
    with contextlib.suppress(Exception):  # the client may already be gone
        await websocket.send_text(dialect.error_frame(problem_for(exc)))
        await websocket.close(code, _reason(exc))


class _End(enum.Enum):
    """How the reader saw the client leave."""

    CLOSE = "close"
    """The client sent `{"close": true}`: finish the run, flush, close with 1000."""

    GONE = "gone"
    """The client disconnected or sent a close frame: cancel the run at once."""


@dataclass
class _OpenCall:
    event: Event
    call: types.FunctionCall


class _LiveConnection:
    """One accepted live WebSocket and the run behind it."""

    def __init__(
        self,
        websocket: WebSocket,
        runner: Runner,
        user_id: str,
        session_id: str,
        run_config: RunConfig,
        release: Callable[[], Awaitable[None]],
        dialect: LiveDialect,
        quota: RunQuota | None = None,
    ) -> None:
        self.ws = websocket
        self.dialect = dialect
        self.release = release
        self.quota = quota
        self.runner = runner
        self.user_id = user_id
        self.session_id = session_id
        self.run_config = run_config
        self.queue = LiveRequestQueue()
        self.outbound: asyncio.Queue[str | None] = asyncio.Queue(maxsize=OUTBOUND_FRAMES)
        self.overflow = asyncio.Event()
        self.open_calls: dict[str, _OpenCall] = {}

    async def serve(self) -> str:
        """Run until the client or the run ends the session; return why it ended."""
        reader = asyncio.create_task(self._read(), name="live-reader")
        run = asyncio.create_task(self._run(), name="live-run")
        writer = asyncio.create_task(self._write(), name="live-writer")
        overflow = asyncio.create_task(self.overflow.wait(), name="live-overflow")
        tasks = {reader, run, writer, overflow}
        try:
            await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
            return await self._finish(reader, run, writer)
        finally:
            self.queue.close()
            for task in tasks:
                task.cancel()
            await asyncio.wait(tasks)  # never raises; our own cancellation still propagates
            for task in tasks:
                if not task.cancelled() and task.exception() is not None:
                    logger.debug("live task ended with error=%r", task.exception())

    async def _finish(
        self, reader: asyncio.Task[_End], run: asyncio.Task[None], writer: asyncio.Task[None]
    ) -> str:
        if self.overflow.is_set():
            await self._stop_run(run)
            await self._close(CLOSE_TRY_AGAIN, "client too slow: outbound queue full")
            return "slow_client"
        if writer.done():  # a send failed: the client is gone
            await self._stop_run(run)
            return "client_gone"
        if reader.done():
            if reader.cancelled() or reader.exception() is not None:
                await self._stop_run(run)
                await self._close(CLOSE_INTERNAL, "internal error")
                return "reader_failed"
            if reader.result() is _End.GONE:
                await self._stop_run(run)
                return "client_gone"
            # {"close": true}: the queue is closed, so the run ends by itself, promptly.
            await asyncio.wait([run], timeout=_RUN_END_TIMEOUT)
            if not run.done():
                await self._stop_run(run)
        reader.cancel()
        error = run.exception() if run.done() and not run.cancelled() else None
        if error is not None:
            logger.warning("live run failed session=%s error=%r", self.session_id, error)
            self._enqueue(self.dialect.error_frame(problem_for(error)))
        if self.overflow.is_set():
            await self._close(CLOSE_TRY_AGAIN, "client too slow: outbound queue full")
            return "slow_client"
        await self._flush(writer)
        if error is not None:
            await self._close(self.dialect.close_code(error), _reason(error))
            return "error"
        await self._close(CLOSE_NORMAL, "")
        return "closed"

    # --- tasks ------------------------------------------------------------------------------

    async def _read(self) -> _End:
        while True:
            message = await self.ws.receive()
            if message["type"] == "websocket.disconnect":
                return _End.GONE
            data: bytes | None = message.get("bytes")
            text: str | None = message.get("text")
            if data is not None:
                self._on_audio(data)
                continue
            if text is None:
                continue
            request = self._parse(text)
            if request is None:
                continue
            if request.close:
                self.queue.close()
                return _End.CLOSE
            self.queue.send(request)

    async def _run(self) -> None:
        events = self.runner.run_live(
            user_id=self.user_id,
            session_id=self.session_id,
            live_request_queue=self.queue,
            run_config=self.run_config,
        )
        try:
            async with contextlib.aclosing(events) as stream:
                async for event in stream:
                    self._track_calls(event)
                    self._enqueue(event.to_json())
                    if self.quota is not None and event.usage_metadata is not None:
                        self.quota.observe(event)
                        self.quota.check_budget()  # over budget: error frame, close 1008
        except asyncio.CancelledError:
            # The client left mid-run: keep the session usable for later runs.
            await self._answer_open_calls()
            raise

    async def _write(self) -> None:
        while True:
            frame = await self.outbound.get()
            if frame is None:
                return
            await self.ws.send_text(frame)

    # --- client frames ----------------------------------------------------------------------

    def _on_audio(self, data: bytes) -> None:
        if len(data) > MAX_FRAME_BYTES:
            self._reject(
                413, "payload_too_large", f"Frames are limited to {MAX_FRAME_BYTES} bytes."
            )
        elif not data or len(data) % 2:
            self._reject(
                400, "invalid_request", "A binary frame is 16-bit PCM: a non-zero even length."
            )
        else:
            # Trusted fields: skip google-genai's validation (~3 µs of ~60 µs per chunk).
            blob = types.Blob.model_construct(mime_type=INPUT_AUDIO_MIME, data=data)
            self.queue.send_realtime(blob)

    def _parse(self, text: str) -> LiveRequest | None:
        if len(text) > MAX_FRAME_BYTES or len(text.encode()) > MAX_FRAME_BYTES:
            self._reject(
                413, "payload_too_large", f"Frames are limited to {MAX_FRAME_BYTES} bytes."
            )
            return None
        if may_hold_forbidden(text):
            with contextlib.suppress(ValueError, RecursionError):  # not JSON: reported below
                loc = find_forbidden(json.loads(text))
                if loc is not None:
                    error = forbidden_text_error(loc)
                    self._reject(422, "invalid_request", f"{FORBIDDEN_TEXT_MSG}.", [error])
                    return None
        try:
            with strict_enums():
                request = LiveRequest.model_validate_json(text)
        except ValidationError as exc:
            errors = [
                {
                    "loc": [printable(str(p)) for p in e.get("loc", ())],
                    "msg": printable(str(e.get("msg", ""))),
                }
                for e in exc.errors()[:5]
            ]
            if any(e["type"] == "json_invalid" for e in exc.errors()):
                self._reject(400, "invalid_request", "The frame is not valid JSON.", errors)
            else:
                detail = "The frame is not a valid LiveRequest."
                self._reject(422, "invalid_request", detail, errors)
            return None
        if not request.model_fields_set - {"partial"}:
            self._reject(400, "invalid_request", "A LiveRequest needs one field (e.g. content).")
            return None
        content = request.content
        if content is not None and any(p.function_call for p in content.parts or []):
            self._reject(400, "invalid_request", "A user message cannot contain function calls.")
            return None
        return request

    def _reject(
        self, status: int, code: str, detail: str, errors: list[dict[str, Any]] | None = None
    ) -> None:
        extra = {"errors": errors} if errors else {}
        self._enqueue(self.dialect.error_frame(problem_body(status, code, detail, **extra)))

    # --- outbound ---------------------------------------------------------------------------

    def _enqueue(self, frame: str) -> None:
        """Queue a frame for the writer; a full queue marks the client as too slow."""
        try:
            self.outbound.put_nowait(frame)
        except asyncio.QueueFull:
            self.overflow.set()

    async def _flush(self, writer: asyncio.Task[None]) -> None:
        """Let the writer send what is queued (bounded), then stop it."""
        if writer.done():
            return
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(_FLUSH_TIMEOUT):
                await self.outbound.put(None)
                await asyncio.wait([writer])

    async def _close(self, code: int, reason: str) -> None:
        await self.release()
        if self.ws.client_state is WebSocketState.DISCONNECTED:
            return
        with contextlib.suppress(Exception):  # the client may have gone meanwhile
            await self.ws.close(code, reason)

    async def _stop_run(self, run: asyncio.Task[None]) -> None:
        self.queue.close()
        run.cancel()
        await asyncio.wait([run])

    # --- keeping the session usable ---------------------------------------------------------

    def _track_calls(self, event: Event) -> None:
        if event.partial:
            return
        for response in event.get_function_responses():
            self.open_calls.pop(response.id or "", None)
        long_running = event.long_running_tool_ids or set()
        for call in event.get_function_calls():
            if call.id and call.id not in long_running:
                self.open_calls[call.id] = _OpenCall(event, call)

    async def _answer_open_calls(self) -> None:
        if not self.open_calls:
            return
        invocation_id = next(iter(self.open_calls.values())).event.invocation_id
        try:
            async with asyncio.timeout(_REPAIR_TIMEOUT):
                answered = await self.runner.answer_open_calls(
                    user_id=self.user_id,
                    session_id=self.session_id,
                    invocation_id=invocation_id,
                    response=CANCELLED_RESPONSE,
                )
        except Exception as exc:  # noqa: BLE001 - best effort; the client is gone anyway
            logger.warning("live repair failed session=%s error=%r", self.session_id, exc)
            return
        logger.info(
            "answered calls left open by a disconnected live run session=%s calls=%d",
            self.session_id,
            answered,
        )
