"""The reference ADK api_server's framing (`/adk/run_sse`, `/adk/run`, `/adk/run_live`).

`/run_sse` sends exactly one `data: <Event JSON>\\n\\n` frame per event: no `id:`, no `event:`,
no `[DONE]`. A failure after the stream started is one last frame,
`data: {"error": ..., "errorCode": ..., "errorMessage": ...}`: the dev UI shows a string
`error`, assistant-ui's adapter marks the message incomplete on `errorCode`/`errorMessage`.
The stream then just ends. Idle keep-alives are SSE comments, which both clients skip.

An event with content parts and a non-empty `artifactDelta` is sent as two frames, as the
reference does for its dev UI: the content with `artifactDelta: {}`, then a content-less copy
carrying the delta.
"""

from __future__ import annotations

import json
from typing import Any

from app.events.event import Event
from app.server.wire.encoder import RunEnd, StreamEncoder

_EMPTY_ARTIFACT_DELTA = '"artifactDelta":{}'

CANCELLED_PROBLEM = {"code": "run_cancelled", "detail": "The run was cancelled."}
"""What a cancelled run's last frame says (a server-side cancel; a disconnect sends nothing)."""

_FAILED_PROBLEM = {"code": "internal", "detail": "The run failed."}


class AdkEncoder(StreamEncoder):
    """`data:` frames of ADK Event JSON, and the reference's error frame at the end."""

    def __init__(self, *, split_artifacts: bool = True) -> None:
        self.split_artifacts = split_artifacts
        """Send content and `artifactDelta` as two frames (off for a `functionCallEventId`)."""

    def event(self, event: Event) -> bytes:
        """One frame; two for content that also carries an artifact delta."""
        if self.split_artifacts and _needs_split(event):
            return b"".join(data_frame(part.to_json()) for part in split_artifact_event(event))
        return data_frame(event.to_json())

    def stored(self, seq: int, raw: str) -> bytes:
        """Replay a stored event's JSON as is (parsed only when it may need the split)."""
        if self.split_artifacts and _EMPTY_ARTIFACT_DELTA not in raw and '"artifactDelta"' in raw:
            return self.event(Event.from_stored_json(raw))
        return data_frame(raw)

    def partial(self, raw: str) -> bytes:
        """Relay a partial event's JSON as is."""
        return data_frame(raw)

    def close(self, end: RunEnd) -> bytes:
        """Nothing on success; the error frame on a failure or a cancel."""
        if end.reason == "completed":
            return b""
        if end.problem is not None:
            return error_frame(end.problem)
        return error_frame(CANCELLED_PROBLEM if end.reason == "cancelled" else _FAILED_PROBLEM)


def data_frame(data: str) -> bytes:
    """One SSE frame holding one JSON document."""
    return b"data: " + data.encode() + b"\n\n"


def error_body(problem: dict[str, Any]) -> dict[str, Any]:
    """The reference clients' error object for a problem: `error`, `errorCode`, `errorMessage`."""
    detail = str(problem.get("detail", ""))
    return {
        "error": detail,
        "errorCode": str(problem.get("code", "internal")),
        "errorMessage": detail,
    }


def error_frame(problem: dict[str, Any]) -> bytes:
    """The last frame of a failed stream (`json.dumps` spacing, as the reference's)."""
    return b"data: " + json.dumps(error_body(problem), ensure_ascii=False).encode() + b"\n\n"


def _needs_split(event: Event) -> bool:
    return bool(event.actions.artifact_delta and event.content and event.content.parts)


def split_artifact_event(event: Event) -> list[Event]:
    """The reference's two frames for an event with both content and an artifact delta."""
    if not _needs_split(event):
        return [event]
    content = event.detached()
    content.actions.artifact_delta = {}
    delta = event.detached()
    delta.content = None
    return [content, delta]
