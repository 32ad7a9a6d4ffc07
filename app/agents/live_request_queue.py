"""LiveRequest and LiveRequestQueue: what a client sends into a live session."""

from __future__ import annotations

import asyncio

from google.genai import types
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class LiveRequest(BaseModel):
    """One client message for a live session; exactly one field is normally set."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        ser_json_bytes="base64",
        val_json_bytes="base64",
    )

    content: types.Content | None = None
    """A complete user turn (text), sent as client content."""

    blob: types.Blob | None = None
    """A realtime chunk (PCM16 audio at 16 kHz, or an image)."""

    activity_start: types.ActivityStart | None = None
    """The user started speaking (manual activity detection)."""

    activity_end: types.ActivityEnd | None = None
    """The user stopped speaking."""

    audio_stream_end: bool | None = None
    """The microphone paused; the model flushes buffered audio."""

    close: bool = False
    """End the live session."""

    partial: bool | None = None
    """Reserved: a partial content (not sent to the model as a turn)."""


class LiveRequestQueue:
    """An unbounded queue of LiveRequests from the client to the live loop.

    `close()` is sticky: once closed, the consumer sees a close request after everything
    sent before it, and later sends are ignored.
    """

    def __init__(self) -> None:
        self._queue: asyncio.Queue[LiveRequest] = asyncio.Queue()
        self._closed = False

    @property
    def closed(self) -> bool:
        """True once `close()` was called."""
        return self._closed

    def send(self, req: LiveRequest) -> None:
        """Enqueue any LiveRequest (a `close` request closes the queue)."""
        if self._closed:
            return
        if req.close:
            self.close()
            return
        self._queue.put_nowait(req)

    def send_content(self, content: types.Content) -> None:
        """Send a complete user turn."""
        self.send(LiveRequest(content=content))

    def send_realtime(self, blob: types.Blob) -> None:
        """Send a realtime audio or video chunk."""
        self.send(LiveRequest(blob=blob))

    def send_activity_start(self) -> None:
        """Signal the start of user activity."""
        self.send(LiveRequest(activity_start=types.ActivityStart()))

    def send_activity_end(self) -> None:
        """Signal the end of user activity."""
        self.send(LiveRequest(activity_end=types.ActivityEnd()))

    def send_audio_stream_end(self) -> None:
        """Signal that the audio stream paused."""
        self.send(LiveRequest(audio_stream_end=True))

    def close(self) -> None:
        """Close the queue; the consumer gets a close request after pending ones."""
        if self._closed:
            return
        self._closed = True
        self._queue.put_nowait(LiveRequest(close=True))

    async def get(self) -> LiveRequest:
        """Wait for the next request."""
        return await self._queue.get()
