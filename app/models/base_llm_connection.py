"""BaseLlmConnection: a bidirectional live connection to a model (run_live)."""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator

from google.genai import types

from app.events.llm_response import LlmResponse


class BaseLlmConnection(abc.ABC):
    """One open live session with a model."""

    @abc.abstractmethod
    async def send_history(self, history: list[types.Content]) -> None:
        """Send the conversation so far (before any live input)."""

    @abc.abstractmethod
    async def send_content(self, content: types.Content) -> None:
        """Send a complete user turn (text) or function responses."""

    @abc.abstractmethod
    async def send_realtime(self, blob: types.Blob) -> None:
        """Send a chunk of realtime input (audio or video)."""

    @abc.abstractmethod
    async def send_activity_start(self) -> None:
        """Signal that the user started speaking (manual activity detection)."""

    @abc.abstractmethod
    async def send_activity_end(self) -> None:
        """Signal that the user stopped speaking."""

    @abc.abstractmethod
    async def send_audio_stream_end(self) -> None:
        """Signal that the audio stream paused (flushes the model's buffered audio)."""

    @abc.abstractmethod
    def receive(self) -> AsyncGenerator[LlmResponse, None]:
        """Yield the model's messages as LlmResponses until the connection closes."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Close the connection."""
