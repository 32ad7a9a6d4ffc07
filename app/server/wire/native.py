"""Our own `:run` framing (HTTP_API.md, "SSE framing"): `id: <seq>` on stored events,
`event: error` with a problem, and exactly one `event: end`.

Each frame is built from one already-encoded JSON string, so an event is serialized once.
JSON text never contains a raw newline, so one `data:` line per frame is enough.
"""

from __future__ import annotations

import json
from typing import Any

from app.events.event import Event
from app.server.wire.encoder import RunEnd, StreamEncoder


class NativeEncoder(StreamEncoder):
    """The native SSE framing of `:run` and `GET .../runs/{id}/events`."""

    def event(self, event: Event) -> bytes:
        """Stored events carry `id: <seq>`; partial (unstored) ones do not."""
        return event_frame(event)

    def stored(self, seq: int, raw: str) -> bytes:
        """Replay a stored event from its JSON as stored (never re-encoded)."""
        return b"id: %d\ndata: %s\n\n" % (seq, raw.encode())

    def partial(self, raw: str) -> bytes:
        """Relay a partial event's JSON as is."""
        return b"data: " + raw.encode() + b"\n\n"

    def close(self, end: RunEnd) -> bytes:
        """`event: error` (when the run failed with a problem), then `event: end`."""
        head = error_frame(end.problem) if end.problem is not None else b""
        return head + end_frame(end.invocation_id, end.last_seq, end.reason)


def event_frame(event: Event) -> bytes:
    """Encode an event: stored events carry `id: <seq>`, partial (unstored) ones do not."""
    data = event.to_json()
    if event.seq is None or event.partial:
        return b"data: " + data.encode() + b"\n\n"
    return b"id: %d\ndata: %s\n\n" % (event.seq, data.encode())


def error_frame(problem: dict[str, Any]) -> bytes:
    """Encode an in-band error (a problem+json body) after the stream has started."""
    return b"event: error\ndata: " + _dumps(problem) + b"\n\n"


def end_frame(invocation_id: str | None, last_seq: int | None, reason: str) -> bytes:
    """Encode the one frame that ends every stream: `completed`, `error` or `cancelled`."""
    body = {"invocationId": invocation_id, "lastSeq": last_seq, "reason": reason}
    return b"event: end\ndata: " + _dumps(body) + b"\n\n"


def _dumps(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode()
