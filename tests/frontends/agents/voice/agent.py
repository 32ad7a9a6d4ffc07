"""The `voice` app: a live-capable scripted model that says what it heard, for frontend tests.

Text (`/run`, `/run_sse`): "You said: <the user's text>".
Live: the model ends the user's audio turn itself once about a second of audio has arrived
(as Gemini's voice activity detection does: the ADK dev UI sends no activity or stream-end
signals), then answers, with audio and an output transcription, what it received:
"I heard 4 chunks of audio/pcm;rate=16000, 32768 bytes, peak 16000." (`peak` is the largest
absolute PCM16 sample: silence is 0). The input transcription is "(32768 bytes heard)".
"""

from __future__ import annotations

import contextlib
import struct
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from google.genai import types

from app.agents import LlmAgent
from app.models import LlmRequest
from app.testing import ScriptedModel
from app.testing.scripted_live import ScriptedLlmConnection, connect_scripted

TURN_BYTES = 32_000
"""About one second of 16 kHz PCM16: the audio that makes one user turn."""

_TEXT_TURNS = 1_000


@dataclass(frozen=True)
class Heard:
    """What one audio turn delivered to the model."""

    chunks: int
    mime_types: tuple[str, ...]
    size: int
    peak: int

    def sentence(self) -> str:
        """The model's answer to the turn."""
        kinds = ", ".join(self.mime_types)
        return f"I heard {self.chunks} chunks of {kinds}, {self.size} bytes, peak {self.peak}."


class HearingConnection(ScriptedLlmConnection):
    """A scripted live connection that ends each audio turn after TURN_BYTES of audio."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.heard: list[Heard] = []
        """One entry per ended turn, oldest first; each answer takes the oldest."""
        self._chunks = 0
        self._mime_types: list[str] = []
        self._size = 0
        self._peak = 0

    async def send_realtime(self, blob: types.Blob) -> None:
        """Count the chunk; a second's worth of audio ends the turn."""
        await super().send_realtime(blob)
        data = blob.data or b""
        mime_type = blob.mime_type or "?"
        if mime_type not in self._mime_types:
            self._mime_types.append(mime_type)
        self._chunks += 1
        self._size += len(data)
        if mime_type.startswith("audio/pcm") and len(data) >= 2:
            samples = struct.unpack(f"<{len(data) // 2}h", data[: len(data) // 2 * 2])
            self._peak = max(self._peak, max(abs(s) for s in samples))
        if self._size >= TURN_BYTES:
            self.heard.append(Heard(self._chunks, tuple(self._mime_types), self._size, self._peak))
            self._chunks, self._mime_types, self._size, self._peak = 0, [], 0, 0
            await self.send_audio_stream_end()

    def answer(self) -> str:
        """The answer to the oldest turn not answered yet."""
        return self.heard.pop(0).sentence() if self.heard else "I heard nothing."


def _echo(request: LlmRequest) -> str:
    for content in reversed(request.contents):
        if content.role == "user" and content.parts and content.parts[0].text:
            return f"You said: {content.parts[0].text}"
    return "You said nothing."


class HearingModel(ScriptedModel):
    """Echoes text turns; live, answers each audio turn with what it heard."""

    def connect(self, llm_request: LlmRequest) -> contextlib.AbstractAsyncContextManager[Any]:
        """Open a HearingConnection."""
        return _hearing_connection(self, llm_request)


@contextlib.asynccontextmanager
async def _hearing_connection(
    model: HearingModel, request: LlmRequest
) -> AsyncIterator[HearingConnection]:
    opened: list[HearingConnection] = []

    def next_item(_: LlmRequest) -> str:
        return opened[0].answer()

    async with connect_scripted(
        model, request, next_item, connection_class=HearingConnection
    ) as connection:
        assert isinstance(connection, HearingConnection)
        opened.append(connection)
        yield connection


root_agent = LlmAgent(
    name="voice_agent",
    model=HearingModel(responses=[_echo] * _TEXT_TURNS),
    instruction="Say what you heard.",
)
