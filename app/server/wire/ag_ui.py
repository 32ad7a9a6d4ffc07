"""AG-UI framing (protocol 1.0, also read by `@ag-ui/client` 0.0.x): our events as AG-UI events.

The mapping (frontend-protocols.md, section 2.4):

- the stream opens with `RUN_STARTED` and a `STATE_SNAPSHOT` of the session state at the start;
- model text is `TEXT_MESSAGE_START/CONTENT/END` whose `messageId` is our event id, so the
  client echoes our ids back in its history. Token partials stream `CONTENT` deltas; the final
  aggregated event then only closes the message (its text was already sent; only a suffix the
  partials missed is added), so no reply is ever shown twice;
- a function call closes any open text and is `TOOL_CALL_START/ARGS/END` (`parentMessageId`:
  the event id); a function response is `TOOL_CALL_RESULT`. A long-running call gets no result:
  the run ends with it open and the client answers it with a `tool` message next run;
- `actions.stateDelta` is a `STATE_DELTA` JSON Patch of `add` operations (JSON-Pointer escaped
  keys; `add` also replaces, and never fails on a missing key as `replace` would);
- the stream ends with `RUN_FINISHED`, after every open message is closed, or with a terminal
  `RUN_ERROR` (the run failed, an event carried an error code, or the run was cancelled:
  code `run_cancelled`). Nothing follows either.

Thoughts, transcriptions, audio and artifact deltas have no AG-UI message and are not sent.
Frames are `data: <json>\\n\\n` (LF only: the AG-UI client splits on `\\n\\n`).
"""

from __future__ import annotations

import json
from typing import Any

from ag_ui.core import (
    BaseEvent,
    RunErrorEvent,
    RunFinishedEvent,
    RunStartedEvent,
    StateDeltaEvent,
    StateSnapshotEvent,
    TextMessageContentEvent,
    TextMessageEndEvent,
    TextMessageStartEvent,
    ToolCallArgsEvent,
    ToolCallEndEvent,
    ToolCallResultEvent,
    ToolCallStartEvent,
)
from ag_ui.encoder import EventEncoder

from app.events.event import Event
from app.server.wire.encoder import RunEnd, StreamEncoder

CANCELLED_CODE = "run_cancelled"
"""`RUN_ERROR.code` of a run cancelled before it finished."""

_TEMP_PREFIX = "temp:"


class AgUiEncoder(StreamEncoder):
    """One AG-UI event stream: `RUN_STARTED` ... `RUN_FINISHED` or `RUN_ERROR`."""

    def __init__(self, thread_id: str, run_id: str, state: dict[str, Any]) -> None:
        self.thread_id = thread_id
        self.run_id = run_id
        self.state = state
        self._sse = EventEncoder()
        self._text_id: str | None = None
        """The open text message (the id of the event whose partials it streams)."""
        self._text_sent = ""
        """What the open text message has sent so far."""
        self._error: RunErrorEvent | None = None
        """The first error an event carried: the run then ends with RUN_ERROR."""
        self._ended = False

    def open(self) -> bytes:
        """`RUN_STARTED`, then the session state as `STATE_SNAPSHOT`."""
        return self._encode(
            RunStartedEvent(thread_id=self.thread_id, run_id=self.run_id),
            StateSnapshotEvent(snapshot=self.state),
        )

    def event(self, event: Event) -> bytes:
        """Map one of our events (partial or stored) to AG-UI events."""
        if self._ended or event.author == "user":
            return b""
        if event.partial:
            return self._encode(*self._partial(event))
        out: list[BaseEvent] = []
        text = _text(event)
        if self._text_id is not None and self._text_id == event.id:
            # The aggregated final event of streamed partials: send only what they missed.
            if text.startswith(self._text_sent) and len(text) > len(self._text_sent):
                rest = text[len(self._text_sent) :]
                out.append(TextMessageContentEvent(message_id=event.id, delta=rest))
            out.extend(self._close_text())
        else:
            out.extend(self._close_text())
            if text:
                out.append(TextMessageStartEvent(message_id=event.id, role="assistant"))
                out.append(TextMessageContentEvent(message_id=event.id, delta=text))
                out.append(TextMessageEndEvent(message_id=event.id))
        for call in event.get_function_calls():
            call_id = call.id or ""
            out.append(
                ToolCallStartEvent(
                    tool_call_id=call_id, tool_call_name=call.name or "", parent_message_id=event.id
                )
            )
            out.append(ToolCallArgsEvent(tool_call_id=call_id, delta=_dumps(call.args or {})))
            out.append(ToolCallEndEvent(tool_call_id=call_id))
        responses = event.get_function_responses()
        for index, response in enumerate(responses):
            message_id = event.id if len(responses) == 1 else f"{event.id}.{index}"
            out.append(
                ToolCallResultEvent(
                    message_id=message_id,
                    tool_call_id=response.id or "",
                    content=_dumps(response.response or {}),
                    role="tool",
                )
            )
        state_delta = event.actions.state_delta if event.actions is not None else None
        if state_delta:
            patch = [
                {"op": "add", "path": "/" + _escape(key), "value": value}
                for key, value in state_delta.items()
                if not key.startswith(_TEMP_PREFIX)
            ]
            if patch:
                out.append(StateDeltaEvent(delta=patch))
        if event.error_code and self._error is None:
            message = event.error_message or event.error_code
            self._error = RunErrorEvent(message=message, code=event.error_code)
        return self._encode(*out)

    def close(self, end: RunEnd) -> bytes:
        """Close any open message, then `RUN_FINISHED` or the one terminal `RUN_ERROR`."""
        if self._ended:
            return b""
        out = self._close_text()
        if end.reason == "error":
            problem = end.problem or {}
            message = str(problem.get("detail") or problem.get("title") or "The run failed.")
            out.append(RunErrorEvent(message=message, code=str(problem.get("code") or "internal")))
        elif end.reason == "cancelled":
            out.append(RunErrorEvent(message="The run was cancelled.", code=CANCELLED_CODE))
        elif self._error is not None:
            out.append(self._error)
        else:
            out.append(RunFinishedEvent(thread_id=self.thread_id, run_id=self.run_id))
        self._ended = True
        return self._encode(*out)

    def _partial(self, event: Event) -> list[BaseEvent]:
        """A token chunk: open the event's text message if needed, then send the delta."""
        text = _text(event)
        if not text:
            return []
        out: list[BaseEvent] = []
        if self._text_id != event.id:
            out.extend(self._close_text())
            out.append(TextMessageStartEvent(message_id=event.id, role="assistant"))
            self._text_id = event.id
        self._text_sent += text
        out.append(TextMessageContentEvent(message_id=event.id, delta=text))
        return out

    def _close_text(self) -> list[BaseEvent]:
        if self._text_id is None:
            return []
        message_id = self._text_id
        self._text_id = None
        self._text_sent = ""
        return [TextMessageEndEvent(message_id=message_id)]

    def _encode(self, *events: BaseEvent) -> bytes:
        return "".join(self._sse.encode(event) for event in events).encode()


def _text(event: Event) -> str:
    """The event's visible text (thoughts left out)."""
    if event.content is None or not event.content.parts:
        return ""
    return "".join(part.text for part in event.content.parts if part.text and not part.thought)


def _escape(key: str) -> str:
    """A state key as one JSON Pointer segment (RFC 6901)."""
    return key.replace("~", "~0").replace("/", "~1")


def _dumps(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, default=str)
