"""The live loop of an LlmAgent: relay a LiveRequestQueue to a model connection and back.

Who owns what:

    run_live_flow            async generator, iterated by Runner.run_live
      driver task            owned by the generator (cancelled and awaited in its `finally`)
        per connection       `llm.connect(request)`, closed when the connection ends
          TaskGroup          sender (queue -> model) and receiver (model -> events)

Both tasks put events on one bounded queue and the generator yields from it, so events leave
in one order and a slow consumer slows the model side down instead of growing memory.

What becomes an event (the runner stores every non-partial one):

- a client `content` (text turn): an event authored `user`, emitted before it is sent;
- model audio and text chunks, partial transcriptions: partial events (streamed, not stored);
- a finished input transcription: an event authored `user`; a finished output transcription
  or aggregated model text: an event authored by the agent;
- `turn_complete` and `interrupted` markers;
- a tool call: the function-call event, then (after the tools ran) the function-response
  event, whose content is also sent back to the model.

Session-resumption handles and `goAway` arrive in `custom_metadata`
(`live_session_resumption_handle`, `live_go_away`); they are consumed here, not emitted. On
`goAway`, or when the model connection drops, the loop reconnects with the newest handle (at
most `MAX_RECONNECTS` times in a row without progress); without a handle a drop ends the run
with an error event. A client `close` closes the model connection and ends the run.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from google.genai import types

from app.agents.invocation_context import InvocationContext
from app.agents.live_request_queue import LiveRequest, LiveRequestQueue
from app.agents.run_config import RunConfig
from app.errors import ModelError
from app.events.event import Event
from app.events.llm_response import LlmResponse
from app.flows.functions import handle_function_calls, long_running_ids, populate_function_call_ids
from app.flows.llm_flow import build_llm_request
from app.models.base_llm_connection import BaseLlmConnection
from app.models.llm_request import LlmRequest
from app.observability import metrics, tracing

if TYPE_CHECKING:
    from app.agents.llm_agent import LlmAgent

logger = logging.getLogger(__name__)

__all__ = [
    "GO_AWAY",
    "MAX_RECONNECTS",
    "SESSION_RESUMPTION_HANDLE",
    "live_connect_config",
    "run_live_flow",
]

SESSION_RESUMPTION_HANDLE = "live_session_resumption_handle"
"""`custom_metadata` key of a model response carrying a new resumption handle (a str)."""

GO_AWAY = "live_go_away"
"""`custom_metadata` key of a model response announcing that the server will close soon."""

_TOOL_CALL_CANCELLATION = "live_tool_call_cancellation"
_CONSUMED_KEYS = frozenset({SESSION_RESUMPTION_HANDLE, GO_AWAY, _TOOL_CALL_CANCELLATION})

MAX_RECONNECTS = 3
"""Reconnections allowed in a row without the model handing out a new resumption handle."""

_EVENT_QUEUE_SIZE = 64
"""Events buffered between the connection tasks and the consumer (~2.5 s of 40 ms audio)."""

_CLOSE_TIMEOUT = 1.0
"""Seconds allowed for closing a model connection before giving up on it."""

_RESPONSE_FIELDS = tuple(LlmResponse.model_fields)
_GENERATION_FIELDS = ("temperature", "top_p", "top_k", "max_output_tokens", "seed")


class _Outcome(enum.Enum):
    """Why one model connection ended."""

    CLOSED = "closed"
    """The client closed the queue: the run is over."""

    DROPPED = "dropped"
    """The connection failed or the server ended it: resume if there is a handle."""

    GO_AWAY = "go_away"
    """The server announced it will close: resume now with the newest handle."""

    TRANSFER = "transfer"
    """A tool transferred the conversation to another agent."""


@dataclass(frozen=True)
class _Emit:
    """An event for the consumer (None: a barrier); `ack` is set once the consumer took it."""

    event: Event | None
    ack: asyncio.Event | None = None


@dataclass(frozen=True)
class _Failure:
    """The driver failed; the generator re-raises `error`."""

    error: Exception


_END = object()


def live_connect_config(
    run_config: RunConfig, config: types.GenerateContentConfig
) -> types.LiveConnectConfig:
    """Build the live connection config from a run's options and the agent's generation config.

    Response modalities default to AUDIO. With AUDIO, input and output transcription are on
    unless the RunConfig sets them (so the stored session keeps what was said). Session
    resumption is always requested: its handles are what a dropped connection resumes with.
    """
    modalities = [types.Modality(str(m).upper()) for m in run_config.response_modalities or []]
    modalities = modalities or [types.Modality.AUDIO]
    audio = types.Modality.AUDIO in modalities
    transcription_default = types.AudioTranscriptionConfig() if audio else None
    resumption = (
        run_config.session_resumption.model_copy()
        if run_config.session_resumption is not None
        else types.SessionResumptionConfig()
    )
    generation = {
        name: getattr(config, name)
        for name in _GENERATION_FIELDS
        if getattr(config, name) is not None
    }
    return types.LiveConnectConfig(
        response_modalities=modalities,
        speech_config=run_config.speech_config,
        input_audio_transcription=run_config.input_audio_transcription or transcription_default,
        output_audio_transcription=(
            run_config.output_audio_transcription or (transcription_default if audio else None)
        ),
        realtime_input_config=run_config.realtime_input_config,
        session_resumption=resumption,
        context_window_compression=run_config.context_window_compression,
        proactivity=run_config.proactivity,
        enable_affective_dialog=run_config.enable_affective_dialog,
        **generation,
    )


async def run_live_flow(ctx: InvocationContext) -> AsyncGenerator[Event, None]:
    """Relay `ctx.live_request_queue` to the agent's model and yield the resulting events.

    Raises:
        ValueError: the context has no live request queue.
        ModelError: the first model connection could not be opened.
    """
    if ctx.live_request_queue is None:
        raise ValueError("run_live needs a LiveRequestQueue.")
    out: asyncio.Queue[object] = asyncio.Queue(maxsize=_EVENT_QUEUE_SIZE)
    live = _LiveSession(ctx, out)
    driver = asyncio.create_task(live.drive(), name=f"live-flow-{ctx.invocation_id}")
    try:
        while True:
            item = await out.get()
            if item is _END:
                return
            if isinstance(item, _Failure):
                raise item.error
            assert isinstance(item, _Emit)
            if item.event is not None:
                yield item.event
            if item.ack is not None:
                item.ack.set()
    finally:
        driver.cancel()
        # Waits without raising the driver's CancelledError; our own cancel still propagates.
        await asyncio.wait([driver])
        if not driver.cancelled() and driver.exception() is not None:
            logger.debug("live driver ended with an error after the consumer left")


class _LiveSession:
    """The state of one live run across its (re)connections."""

    def __init__(self, ctx: InvocationContext, out: asyncio.Queue[object]) -> None:
        self.ctx = ctx
        self.agent: LlmAgent = ctx.agent  # type: ignore[assignment]
        self.queue = ctx.live_request_queue
        self.out = out
        self.handle: str | None = None
        self.failures = 0
        self.pending: LiveRequest | None = None
        """A request taken from the queue but not (known to be) sent: resent after resuming."""
        self.pending_unstored = False
        """The pending request is a user turn whose event was not emitted yet."""
        self.error: tuple[str, str] | None = None
        self.transfer_to: str | None = None
        self.request: LlmRequest | None = None
        self.model = ""
        self.turn_span: Any = None
        """The current model turn's `chat` span (tracing on), ended at turn_complete."""

    async def drive(self) -> None:
        """Run the loop; report its end (or failure) to the generator."""
        try:
            await self._run()
        except Exception as exc:  # noqa: BLE001 - handed to the generator, which re-raises it
            await self.out.put(_Failure(exc))
            return
        await self.out.put(_END)

    async def _run(self) -> None:
        request = await build_llm_request(self.ctx)
        request.live_connect_config = live_connect_config(self.ctx.run_config, request.config)
        self.request = request
        self.model = request.model or self.agent.canonical_model.model
        resumption = request.live_connect_config.session_resumption
        self.handle = resumption.handle if resumption is not None else None
        llm = self.agent.canonical_model
        first = True
        while True:
            self.ctx.increment_llm_call_count()
            try:
                outcome = await self._connect_once(llm, request, send_history=first)
            except ModelError as exc:
                if first:
                    raise
                logger.warning("live reconnect failed agent=%s error=%s", self.agent.name, exc)
                self.error = ("UNAVAILABLE", str(exc))
                outcome = _Outcome.DROPPED
            first = False
            if outcome is _Outcome.CLOSED:
                return
            if outcome is _Outcome.TRANSFER:
                await self._transfer()
                return
            if self.handle is None or self.failures >= MAX_RECONNECTS:
                await self._emit_connection_error()
                return
            self.failures += 1
            logger.info(
                "live session resuming agent=%s reason=%s attempt=%d",
                self.agent.name,
                outcome.value,
                self.failures,
            )
            config = request.live_connect_config
            previous = config.session_resumption or types.SessionResumptionConfig()
            config.session_resumption = previous.model_copy(update={"handle": self.handle})

    async def _connect_once(self, llm: Any, request: LlmRequest, *, send_history: bool) -> _Outcome:
        async with llm.connect(request) as connection:
            try:
                # A resumed session already holds the history on the server side.
                if send_history and not self.handle and request.contents:
                    await connection.send_history(request.contents)
                return await self._relay(connection)
            finally:
                self._end_turn(None)
                await _close(connection)

    async def _relay(self, connection: BaseLlmConnection) -> _Outcome:
        """Run the sender and receiver until one of them ends the connection."""
        try:
            async with asyncio.TaskGroup() as group:
                sender = group.create_task(self._send_loop(connection))
                receiver = group.create_task(self._receive_loop(connection))
                # Whichever ends first ends the other: the connection is over either way.
                sender.add_done_callback(lambda _: receiver.cancel())
                receiver.add_done_callback(lambda _: sender.cancel())
        except ExceptionGroup as group_error:
            if len(group_error.exceptions) == 1:
                raise group_error.exceptions[0] from None
            raise
        for task in (sender, receiver):  # the client's close wins a tie
            if not task.cancelled():
                return task.result()
        raise AssertionError("both live tasks were cancelled")  # pragma: no cover

    # --- client -> model --------------------------------------------------------------------

    async def _send_loop(self, connection: BaseLlmConnection) -> _Outcome:
        assert self.queue is not None
        while True:
            if self.pending is None:
                request = await self.queue.get()
                if request.close:
                    return _Outcome.CLOSED
                content = request.content
                if content is not None and content.role != "user":
                    content = content.model_copy(update={"role": "user"})
                    request = request.model_copy(update={"content": content})
                self.pending = request
                self.pending_unstored = content is not None
            request = self.pending
            if self.pending_unstored:
                assert request.content is not None
                user_event = Event(
                    invocation_id=self.ctx.invocation_id, author="user", content=request.content
                )
                await self._emit(user_event)
                self.pending_unstored = False
            if request.blob is not None:
                metrics.audio_chunk("in")
            try:
                await _send(connection, request)
            except Exception as exc:  # noqa: BLE001 - any send failure means the link is gone
                logger.warning("live send failed agent=%s error=%r", self.agent.name, exc)
                self.error = ("UNAVAILABLE", f"sending to the model failed: {exc}")
                return _Outcome.DROPPED
            self.pending = None

    # --- model -> client --------------------------------------------------------------------

    async def _receive_loop(self, connection: BaseLlmConnection) -> _Outcome:
        async with contextlib.aclosing(connection.receive()) as responses:
            async for response in responses:
                outcome = await self._on_response(connection, response)
                if outcome is not None:
                    return outcome
        if self.error is None:
            self.error = ("UNAVAILABLE", "the model closed the live connection")
        return _Outcome.DROPPED

    async def _on_response(
        self, connection: BaseLlmConnection, response: LlmResponse
    ) -> _Outcome | None:
        metadata = dict(response.custom_metadata or {})
        handle = metadata.get(SESSION_RESUMPTION_HANDLE)
        if isinstance(handle, str) and handle:
            self.handle = handle
            self.failures = 0  # the session made progress: reconnections start afresh
        if GO_AWAY in metadata:
            logger.info("live goAway agent=%s resumable=%s", self.agent.name, bool(self.handle))
            if self.handle:
                return _Outcome.GO_AWAY
        if response.error_code:
            self.error = (response.error_code, response.error_message or "live connection failed")
            metrics.model_call_error(self.model, response.error_code)
            self._end_turn(response)
            return _Outcome.DROPPED
        self._observe(response)
        if not response.partial and response.content and _has_function_calls(response.content):
            return await self._run_tools(connection, response)
        event = self._event(
            response, {k: v for k, v in metadata.items() if k not in _CONSUMED_KEYS}
        )
        if event is not None:
            await self._emit(event)
        return None

    def _observe(self, response: LlmResponse) -> None:
        """Per-turn span, tokens and audio chunks of one model message."""
        content = response.content
        if (
            self.turn_span is None
            and tracing.enabled()
            and (content is not None or response.output_transcription is not None)
        ):
            # A turn is the model speaking; bare metadata (resumption handles) is not one.
            self.turn_span = tracing.chat(self.model, self.ctx.trace_span)
        if content is not None and content.parts:
            for part in content.parts:
                blob = part.inline_data
                if blob is not None and (blob.mime_type or "").startswith("audio/"):
                    metrics.audio_chunk("out")
        if response.usage_metadata is not None:
            metrics.tokens(self.ctx.app_name, self.model, response.usage_metadata)
        if response.turn_complete or response.interrupted:
            self._end_turn(response)

    def _end_turn(self, response: LlmResponse | None) -> None:
        span, self.turn_span = self.turn_span, None
        if span is not None:
            if response is not None:
                tracing.chat_response(span, response)
            tracing.end_span(span)

    def _event(self, response: LlmResponse, metadata: dict[str, Any]) -> Event | None:
        fields: dict[str, Any] = {name: getattr(response, name) for name in _RESPONSE_FIELDS}
        fields["custom_metadata"] = metadata or None
        has_payload = any(
            fields[name] is not None
            for name in (
                "content",
                "input_transcription",
                "output_transcription",
                "turn_complete",
                "interrupted",
                "custom_metadata",
            )
        )
        if not has_payload:
            return None  # e.g. a bare usage update or a consumed resumption handle
        author = "user" if response.input_transcription is not None else self.agent.name
        return Event(
            invocation_id=self.ctx.invocation_id, author=author, branch=self.ctx.branch, **fields
        )

    async def _run_tools(
        self, connection: BaseLlmConnection, response: LlmResponse
    ) -> _Outcome | None:
        assert self.request is not None
        call_event = self._event(response, {})
        assert call_event is not None
        populate_function_call_ids(call_event)
        call_event.long_running_tool_ids = long_running_ids(call_event, self.request.tools_dict)
        # Stored before the tools run: on_event(call) precedes before_tool, as in run_async.
        await self._emit(call_event, wait=True)
        response_event = await handle_function_calls(self.ctx, call_event, self.request.tools_dict)
        if response_event is None:
            return None
        await self._emit(response_event, wait=True)
        if response_event.content is not None:
            await connection.send_content(response_event.content)
        if response_event.actions.transfer_to_agent:
            self.transfer_to = response_event.actions.transfer_to_agent
            return _Outcome.TRANSFER
        return None

    # --- endings ----------------------------------------------------------------------------

    async def _transfer(self) -> None:
        assert self.transfer_to is not None
        target = self.agent.root_agent.find_agent(self.transfer_to)
        if target is None:
            raise ValueError(f"Agent {self.transfer_to!r} not found in the agent tree.")
        # The target's history must hold every event emitted so far (the user's last turn).
        await self._emit(None, wait=True)
        ctx = self.ctx
        if self.pending is not None and self.pending_unstored and self.queue is not None:
            # Taken from the queue but not yet stored or sent: the new agent gets it first.
            queue = _HandoverQueue(self.queue, self.pending)
            ctx = ctx.model_copy(update={"live_request_queue": queue})
        # A stored pending turn is in the target's history, which the target's model answers.
        self.pending = None
        async with contextlib.aclosing(target.run_live(ctx)) as events:
            async for event in events:
                await self._emit(event, wait=not event.partial)

    async def _emit_connection_error(self) -> None:
        code, message = self.error or ("UNAVAILABLE", "the live connection was lost")
        if self.handle is not None:
            message = f"{message} (gave up after {self.failures} reconnections)"
        logger.warning("live session ended agent=%s code=%s", self.agent.name, code)
        await self._emit(
            Event(
                invocation_id=self.ctx.invocation_id,
                author=self.agent.name,
                branch=self.ctx.branch,
                error_code=code,
                error_message=message,
            )
        )

    async def _emit(self, event: Event | None, *, wait: bool = False) -> None:
        """Hand `event` to the consumer; with `wait`, return only once it was taken.

        `None` with `wait` is a barrier: it returns once everything emitted before is stored.
        """
        ack = asyncio.Event() if wait else None
        await self.out.put(_Emit(event, ack))
        if ack is not None:
            await ack.wait()


class _HandoverQueue(LiveRequestQueue):
    """The client's queue with one request put back in front (for a transferred-to agent)."""

    def __init__(self, inner: LiveRequestQueue, first: LiveRequest) -> None:
        super().__init__()
        self._inner = inner
        self._first: LiveRequest | None = first

    @property
    def closed(self) -> bool:
        """True once the client's queue was closed."""
        return self._inner.closed

    def send(self, req: LiveRequest) -> None:
        """Enqueue on the client's queue."""
        self._inner.send(req)

    def close(self) -> None:
        """Close the client's queue."""
        self._inner.close()

    async def get(self) -> LiveRequest:
        """Return the handed-over request first, then the client's requests."""
        if self._first is not None:
            first, self._first = self._first, None
            return first
        return await self._inner.get()


async def _send(connection: BaseLlmConnection, request: LiveRequest) -> None:
    if request.content is not None:
        await connection.send_content(request.content)
    elif request.blob is not None:
        await connection.send_realtime(request.blob)
    elif request.activity_start is not None:
        await connection.send_activity_start()
    elif request.activity_end is not None:
        await connection.send_activity_end()
    elif request.audio_stream_end:
        await connection.send_audio_stream_end()


async def _close(connection: BaseLlmConnection) -> None:
    """Close a model connection, bounded in time; a failure to close is only logged."""
    try:
        async with asyncio.timeout(_CLOSE_TIMEOUT):
            await connection.close()
    except TimeoutError:
        logger.warning("live connection did not close within %.1fs", _CLOSE_TIMEOUT)
    except Exception as exc:  # noqa: BLE001 - the connection is being abandoned anyway
        logger.debug("live connection close failed error=%r", exc)


def _has_function_calls(content: types.Content) -> bool:
    return any(part.function_call is not None for part in content.parts or [])
