"""Server-Sent Events framing for runs (see HTTP_API.md, "SSE framing").

Each frame is built from one already-encoded JSON string, so an event is serialized once.
JSON text never contains a raw newline, so one `data:` line per frame is enough.
"""

from __future__ import annotations

import json
from typing import Any

from app.events.event import Event

PING = b": ping\n\n"
"""Keep-alive comment sent while a run is idle."""

HEADERS: list[tuple[bytes, bytes]] = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]
"""Response headers of every run stream (no proxy buffering, no caching)."""


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
