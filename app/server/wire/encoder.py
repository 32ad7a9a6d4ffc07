"""The contract between the run machinery and a protocol's framing."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from app.events.event import Event

EndReason = Literal["completed", "error", "cancelled"]

SSE_HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
"""Response headers of every event stream (no proxy buffering, no caching)."""

SSE_PING = b": ping\n\n"
"""An SSE comment: keeps proxies and clients from timing out an idle stream."""


@dataclass(frozen=True)
class RunEnd:
    """How a run ended, as every encoder needs it for its last frames."""

    invocation_id: str | None
    last_seq: int | None
    reason: EndReason
    problem: dict[str, Any] | None = None
    """The problem+json body of the failure (`reason == "error"`), when there is one."""


class StreamEncoder:
    """Turns one run's lifecycle and events into the bytes of one streamed response.

    One instance per response; it may keep state across calls (open text messages, steps).
    Every method returns the bytes to send, `b""` for nothing. The run machinery calls `open`
    once when the response starts, `event` per event (partial ones too, in order), `ping`
    while the run is idle, and `close` exactly once at the end, whatever the outcome.
    """

    headers: list[tuple[bytes, bytes]] = SSE_HEADERS
    """Response headers (content type included)."""

    def open(self) -> bytes:
        """Frames that start the stream."""
        return b""

    def event(self, event: Event) -> bytes:
        """Frames for one event (`event.partial` ones are streamed, never stored)."""
        raise NotImplementedError

    def stored(self, seq: int, raw: str) -> bytes:
        """Frames for a stored event replayed from its JSON (reattach)."""
        return self.event(Event.from_stored_json(raw))

    def partial(self, raw: str) -> bytes:
        """Frames for a partial event relayed as JSON (reattach to a run on another task)."""
        return self.event(Event.model_validate_json(raw))

    def ping(self) -> bytes:
        """A keep-alive while the run is idle."""
        return SSE_PING

    def close(self, end: RunEnd) -> bytes:
        """The last frames of the stream."""
        raise NotImplementedError
