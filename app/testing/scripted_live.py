"""Live support for ScriptedModel: an in-process, scripted BaseLlmConnection.

`ScriptedModel.connect()` opens a `ScriptedLlmConnection`. Each user turn consumes the next
item of the model's script; a user turn is a text `send_content`, or `send_audio_stream_end` /
`send_activity_end` after some realtime audio, or (as with Gemini) a history sent by
`send_history` whose last content is the user's. The answer mirrors what `GeminiLlmConnection`
yields for the real Live API:

- `str`, with AUDIO in the connection's response modalities: the input transcription of the
  heard audio (`"(N bytes heard)"`, partial then finished) when the turn was audio and input
  transcription is on; PCM16 24 kHz audio chunks of 40 ms (a 440 Hz sine, one chunk per
  word, partial); the output transcription (partial per word, then finished) when it is on;
  then `turn_complete` with usage.
- `str` with TEXT: word chunks (partial), the aggregated text, then `turn_complete`.
- a `types.Part` or list of Parts with function calls: (any text first, then) a tool call;
  calls without an id get `fc-<n>`. The next item answers once the function responses
  arrive through `send_content`.
- `LiveInterrupt(text)`: half of the answer, then `interrupted`.
- `LlmResponse`: yielded as is; an `Exception`: raised from `receive()`; a callable: called
  with the connection's LlmRequest whose `contents` are the conversation so far (history,
  then each user turn, model reply and function response of this connection; an audio turn
  as the text `"(N bytes heard)"`), its result used as the item. Every consumed item also
  appends that request to `ScriptedModel.requests`.

Control items run as soon as the connection is idle (right after it opens, or after the
previous turn), without waiting for a user turn: `LiveGoAway()` sends `goAway` and ends the
connection normally; `LiveDrop()` ends it with an error response, as a lost connection does.

With session resumption requested, every completed turn is followed by a new handle
(`scripted-handle-<n>`). `live_connections(model)` lists the connections a model opened, with
what each was sent, for assertions.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import math
import re
import struct
import weakref
from collections.abc import AsyncGenerator, AsyncIterator, Callable
from dataclasses import dataclass
from functools import cache
from typing import TYPE_CHECKING, Any

from google.genai import types

from app.events.llm_response import LlmResponse
from app.models.base_llm_connection import BaseLlmConnection
from app.models.llm_request import LlmRequest

if TYPE_CHECKING:
    from app.testing.scripted_model import ScriptedModel

__all__ = [
    "LiveDrop",
    "LiveGoAway",
    "LiveInterrupt",
    "ScriptedLlmConnection",
    "connect_scripted",
    "live_connections",
]

SESSION_RESUMPTION_HANDLE = "live_session_resumption_handle"
GO_AWAY = "live_go_away"

OUTPUT_AUDIO_MIME = "audio/pcm;rate=24000"
_OUTPUT_RATE = 24_000
_CHUNK_SAMPLES = 960  # 40 ms at 24 kHz
_MAX_CHUNKS = 50
_WORDS = re.compile(r"\S+\s*|\s+")

_handles = itertools.count(1)
_call_ids = itertools.count(1)


@dataclass(frozen=True)
class LiveGoAway:
    """Control item: the server announces it will close (`goAway`), then closes normally."""

    time_left: str = "10s"


@dataclass(frozen=True)
class LiveDrop:
    """Control item: the connection fails, as a network drop or a 1011 close does."""

    code: str = "1011"
    message: str = "scripted connection drop"


@dataclass(frozen=True)
class LiveInterrupt:
    """Start answering `text`, then report that the user interrupted the model."""

    text: str


class _Closed:
    """Inbox marker: `close()` was called."""


@dataclass(frozen=True)
class _Turn:
    said: str
    audio: bool
    from_history: bool = False


@dataclass(frozen=True)
class _ToolResponse:
    content: types.Content


_Inbound = _Turn | _ToolResponse | _Closed


class ScriptedLlmConnection(BaseLlmConnection):
    """A live connection that answers each user turn with the model's next script item."""

    def __init__(
        self,
        model: ScriptedModel,
        request: LlmRequest,
        next_item: Callable[[LlmRequest], Any],
    ) -> None:
        self.model = model
        self.request = request
        self._next_item = next_item
        config = request.live_connect_config
        modalities = [str(getattr(m, "value", m)).upper() for m in config.response_modalities or []]
        self.audio = "AUDIO" in modalities
        """True when the model answers with audio (else text)."""
        self.transcribe_input = config.input_audio_transcription is not None
        self.transcribe_output = self.audio and config.output_audio_transcription is not None
        self.resumable = config.session_resumption is not None
        self.resumed_with: str | None = (
            config.session_resumption.handle if config.session_resumption else None
        )
        """The handle this connection was opened with (None for a fresh session)."""
        self.history: list[types.Content] = []
        """What `send_history` sent."""
        self.contents: list[types.Content] = []
        """Every `send_content`: user turns and function responses, in order."""
        self.blob_count = 0
        """Realtime chunks received."""
        self.blob_bytes = 0
        """Total bytes of realtime chunks received."""
        self.activity_starts = 0
        self.activity_ends = 0
        self.audio_stream_ends = 0
        self.closed = False
        """True once `close()` was called."""
        self.closed_event = asyncio.Event()
        """Set by `close()`: tests wait on it instead of polling `closed`."""
        self._heard = 0
        self._awaiting_tool_response = False
        self._conversation: list[types.Content] = list(request.contents)
        self._inbox: asyncio.Queue[_Inbound] = asyncio.Queue()

    # --- client -> model --------------------------------------------------------------------

    async def send_history(self, history: list[types.Content]) -> None:
        """Record the history; like Gemini, answer it when its last turn is the user's."""
        self._check_open()
        self.history.extend(history)
        if history and history[-1].role == "user":
            said = "".join(p.text or "" for p in history[-1].parts or [])
            self._inbox.put_nowait(_Turn(said, audio=False, from_history=True))

    async def send_content(self, content: types.Content) -> None:
        """Record a user turn or function responses; a turn is answered by the next item."""
        self._check_open()
        self.contents.append(content)
        if any(p.function_response for p in content.parts or []):
            self._inbox.put_nowait(_ToolResponse(content))
            return
        said = "".join(p.text or "" for p in content.parts or [])
        self._inbox.put_nowait(_Turn(said, audio=False))

    async def send_realtime(self, blob: types.Blob) -> None:
        """Count a realtime chunk; audio is 'heard' until the stream ends."""
        self._check_open()
        size = len(blob.data or b"")
        self.blob_count += 1
        self.blob_bytes += size
        if (blob.mime_type or "").startswith("audio/"):
            self._heard += size

    async def send_activity_start(self) -> None:
        """Record the start of user activity."""
        self._check_open()
        self.activity_starts += 1

    async def send_activity_end(self) -> None:
        """End the user's audio turn, if audio was heard."""
        self._check_open()
        self.activity_ends += 1
        self._end_audio_turn()

    async def send_audio_stream_end(self) -> None:
        """End the user's audio turn, if audio was heard."""
        self._check_open()
        self.audio_stream_ends += 1
        self._end_audio_turn()

    async def close(self) -> None:
        """Close the connection; `receive()` ends."""
        if not self.closed:
            self.closed = True
            self.closed_event.set()
            self._inbox.put_nowait(_Closed())

    def _check_open(self) -> None:
        if self.closed:
            raise ConnectionError("The scripted live connection is closed.")

    def _end_audio_turn(self) -> None:
        if self._heard:
            heard, self._heard = self._heard, 0
            self._inbox.put_nowait(_Turn(f"({heard} bytes heard)", audio=True))

    # --- model -> client --------------------------------------------------------------------

    async def receive(self) -> AsyncGenerator[LlmResponse, None]:
        """Yield the scripted answers to each user turn until the connection ends."""
        while True:
            for response in self._control_items():
                yield response
                if response.error_code or (response.custom_metadata or {}).get(GO_AWAY):
                    return
            message = await self._inbox.get()
            if isinstance(message, _Closed):
                return
            if isinstance(message, _ToolResponse):
                if not self._awaiting_tool_response:
                    continue  # a stray response; the real API ignores it too
                self._awaiting_tool_response = False
                self._conversation.append(message.content)
                message = _Turn("", audio=False)
            elif not message.from_history:  # a history turn is in the conversation already
                said = types.Content(role="user", parts=[types.Part(text=message.said)])
                self._conversation.append(said)
            turn_request = self._turn_request()
            item = await self._resolve(self._next_item(turn_request), turn_request)
            for response in self._answer(item, message):
                yield response

    def _control_items(self) -> list[LlmResponse]:
        script, index = self.model.responses, self.model.calls
        if (
            self._awaiting_tool_response
            or index >= len(script)
            or not isinstance(script[index], LiveGoAway | LiveDrop)
        ):
            return []
        item = self._next_item(self._turn_request())
        if isinstance(item, LiveDrop):
            return [LlmResponse(error_code=item.code, error_message=item.message)]
        return [LlmResponse(custom_metadata={GO_AWAY: {"time_left": item.time_left}})]

    def _turn_request(self) -> LlmRequest:
        """The connection's request with the conversation so far as `contents`."""
        return self.request.model_copy(update={"contents": list(self._conversation)})

    async def _resolve(self, item: Any, request: LlmRequest) -> Any:
        if callable(item) and not isinstance(item, BaseException | type):
            item = item(request)
            if inspect.isawaitable(item):
                item = await item
        if isinstance(item, BaseException):
            raise item
        return item

    def _answer(self, item: Any, turn: _Turn) -> list[LlmResponse]:
        if isinstance(item, LlmResponse):
            return [item]
        responses: list[LlmResponse] = []
        if turn.audio and self.transcribe_input:
            responses.append(
                LlmResponse(input_transcription=types.Transcription(text=turn.said), partial=True)
            )
            responses.append(
                LlmResponse(input_transcription=types.Transcription(text=turn.said, finished=True))
            )
        if isinstance(item, LiveInterrupt):
            words = _WORDS.findall(item.text) or [item.text]
            responses.extend(self._say("".join(words[: max(1, len(words) // 2)])))
            responses.append(LlmResponse(interrupted=True))
            return responses
        parts = _parts(item)
        text = "".join(p.text or "" for p in parts if not p.thought)
        calls = [p for p in parts if p.function_call is not None]
        if text:
            responses.extend(self._say(text))
        if text:
            self._conversation.append(_model(types.Part(text=text)))
        if calls:
            calls = [_with_call_id(p) for p in calls]
            responses.append(LlmResponse(content=types.Content(role="model", parts=calls)))
            self._conversation.append(types.Content(role="model", parts=calls))
            self._awaiting_tool_response = True
            return responses
        usage = types.GenerateContentResponseUsageMetadata(
            prompt_token_count=max(1, len(turn.said.split())),
            candidates_token_count=len(text.split()),
            total_token_count=max(1, len(turn.said.split())) + len(text.split()),
        )
        responses.append(LlmResponse(turn_complete=True, usage_metadata=usage))
        if self.resumable:
            handle = f"scripted-handle-{next(_handles)}"
            responses.append(LlmResponse(custom_metadata={SESSION_RESUMPTION_HANDLE: handle}))
        return responses

    def _say(self, text: str) -> list[LlmResponse]:
        words = _WORDS.findall(text) or [text]
        responses: list[LlmResponse] = []
        if not self.audio:
            for word in words:
                responses.append(LlmResponse(content=_model(types.Part(text=word)), partial=True))
            responses.append(LlmResponse(content=_model(types.Part(text=text))))
            return responses
        for chunk in audio_chunks(min(len(words), _MAX_CHUNKS)):
            blob = types.Blob(mime_type=OUTPUT_AUDIO_MIME, data=chunk)
            responses.append(
                LlmResponse(content=_model(types.Part(inline_data=blob)), partial=True)
            )
        if self.transcribe_output:
            for word in words:
                chunk_text = types.Transcription(text=word)
                responses.append(LlmResponse(output_transcription=chunk_text, partial=True))
            final = types.Transcription(text=text, finished=True)
            responses.append(LlmResponse(output_transcription=final))
        return responses


_registry: dict[int, list[ScriptedLlmConnection]] = {}


def live_connections(model: ScriptedModel) -> list[ScriptedLlmConnection]:
    """Return the live connections `model` opened, oldest first."""
    return _registry.get(id(model), [])


@contextlib.asynccontextmanager
async def connect_scripted(
    model: ScriptedModel,
    request: LlmRequest,
    next_item: Callable[[LlmRequest], Any],
    *,
    connection_class: type[ScriptedLlmConnection] = ScriptedLlmConnection,
) -> AsyncIterator[ScriptedLlmConnection]:
    """Open a scripted connection for `model` (its script is consumed via `next_item`)."""
    connection = connection_class(model, request, next_item)
    key = id(model)
    if key not in _registry:
        _registry[key] = []
        weakref.finalize(model, _registry.pop, key, None)
    _registry[key].append(connection)
    try:
        yield connection
    finally:
        await connection.close()


def audio_chunks(count: int) -> tuple[bytes, ...]:
    """Return `count` (at most 50) consecutive 40 ms chunks of a 440 Hz tone, PCM16 at 24 kHz."""
    return _tone()[:count]


@cache
def _tone() -> tuple[bytes, ...]:
    chunks = []
    for c in range(_MAX_CHUNKS):
        start = c * _CHUNK_SAMPLES
        samples = (
            round(8000 * math.sin(2 * math.pi * 440 * (start + i) / _OUTPUT_RATE))
            for i in range(_CHUNK_SAMPLES)
        )
        chunks.append(struct.pack(f"<{_CHUNK_SAMPLES}h", *samples))
    return tuple(chunks)


def _model(part: types.Part) -> types.Content:
    return types.Content(role="model", parts=[part])


def _parts(item: Any) -> list[types.Part]:
    if isinstance(item, str):
        return [types.Part(text=item)]
    if isinstance(item, types.Part):
        return [item]
    if isinstance(item, types.Content):
        return list(item.parts or [])
    if isinstance(item, list) and all(isinstance(p, types.Part) for p in item):
        return list(item)
    raise TypeError(f"Unsupported live script item: {item!r}")


def _with_call_id(part: types.Part) -> types.Part:
    call = part.function_call
    if call is None or call.id:
        return part
    call = call.model_copy(update={"id": f"fc-{next(_call_ids)}"})
    return part.model_copy(update={"function_call": call})
