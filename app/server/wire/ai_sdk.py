"""The Vercel AI SDK UI message stream v1 (`useChat`'s `DefaultChatTransport`).

One run is one assistant message: `start{messageId}`, then per model step `start-step` ...
`finish-step` holding text (`text-start/delta/end`), reasoning (`reasoning-*`), tool calls
(`tool-input-available`, `dynamic: true`) and their results (`tool-output-available` or
`tool-output-error`) and files the model made (`file`); state deltas as `data-state-delta`
parts; then `error{errorText}` when the run failed (or `abort` when it was cancelled),
`finish`, and `data: [DONE]`.

The client's parser throws on any chunk that fails its schema, on a delta for a part it was
not told about and on a tool result for an unknown call, so this encoder only emits the chunk
types common to `ai` 5, 6 and 7 and keeps the client's view consistent: every text part is
closed before a tool chunk or a step end, a model response's final (aggregated) text is not
sent again after its partials, and tool results are sent only for calls the stream announced.
Keep-alives are SSE comments, which the parser ignores.
"""

from __future__ import annotations

import base64
from typing import Any

from google.genai import types
from pydantic_core import to_json

from app.events.event import Event
from app.server.wire.encoder import SSE_HEADERS, RunEnd, StreamEncoder

UI_MESSAGE_STREAM_HEADER = (b"x-vercel-ai-ui-message-stream", b"v1")
"""The header the AI SDK's docs ask custom backends to send."""

DONE = b"data: [DONE]\n\n"
"""The last frame of every stream."""

STATE_DELTA_PART = "data-state-delta"
"""The data part carrying an event's `actions.stateDelta`."""

_FAILED_TEXT = "The run failed."


class AiSdkEncoder(StreamEncoder):
    """Encode one run as a UI message stream; one instance per response (it keeps state).

    `message_id` becomes the assistant message's id (the invocation id, so that a resumed
    stream updates the same message). A `resumed` stream (replayed from the event log, then
    followed) skips partial events: it may join a model response half-way, and the stored
    final event carries the whole text anyway.
    """

    headers = [*SSE_HEADERS, UI_MESSAGE_STREAM_HEADER]

    def __init__(self, message_id: str, *, resumed: bool = False) -> None:
        self.message_id = message_id
        self.resumed = resumed
        self._step_open = False
        self._step_has_results = False
        self._text: tuple[str, str] | None = None
        """(part id, event id) of the open text part."""
        self._reasoning: tuple[str, str] | None = None
        self._streamed: set[str] = set()
        """Event ids whose text or reasoning went out as partial deltas."""
        self._part_ids: set[str] = set()
        self._calls: set[str] = set()
        """Tool calls announced to the client (results for others would make it throw)."""
        self._client_calls: set[str] = set()
        """Long-running calls: the client supplies their output, the stream does not."""

    def open(self) -> bytes:
        """`start` with the assistant message's id."""
        return _chunk({"type": "start", "messageId": self.message_id})

    def partial(self, raw: str) -> bytes:
        """A resumed stream skips partial events without parsing them."""
        if self.resumed:
            return b""
        return self.event(Event.model_validate_json(raw))

    def event(self, event: Event) -> bytes:
        """Chunks for one event; the user's own events (and partials when resumed) give none."""
        if event.author == "user" or (event.partial and self.resumed):
            return b""
        out: list[bytes] = []
        content = event.content
        if content is not None and content.parts:
            if event.partial:
                self._partial_parts(event, out)
            else:
                self._final_parts(event, out)
        if not event.partial:
            self._close_text(out)
            self._close_reasoning(out)
            delta = event.actions.state_delta
            if delta:
                out.append(_chunk({"type": STATE_DELTA_PART, "data": delta}))
            if event.error_code or event.error_message:
                text = event.error_message or event.error_code or _FAILED_TEXT
                out.append(_chunk({"type": "error", "errorText": text}))
        return b"".join(out)

    def close(self, end: RunEnd) -> bytes:
        """Close what is open; `error` or `abort` as the run ended; `finish`; `[DONE]`."""
        out: list[bytes] = []
        self._close_text(out)
        self._close_reasoning(out)
        if self._step_open:
            out.append(_chunk({"type": "finish-step"}))
            self._step_open = False
        if end.reason == "error":
            detail = (end.problem or {}).get("detail")
            text = detail if isinstance(detail, str) and detail else _FAILED_TEXT
            out.append(_chunk({"type": "error", "errorText": text}))
            out.append(_chunk({"type": "finish", "finishReason": "error"}))
        elif end.reason == "cancelled":
            out.append(_chunk({"type": "abort", "reason": "cancelled"}))
            out.append(_chunk({"type": "finish"}))
        else:
            reason = "tool-calls" if self._client_calls else "stop"
            out.append(_chunk({"type": "finish", "finishReason": reason}))
        out.append(DONE)
        return b"".join(out)

    # Parts.

    def _partial_parts(self, event: Event, out: list[bytes]) -> None:
        """Stream text and reasoning deltas (tool calls wait for the final event)."""
        assert event.content is not None and event.content.parts is not None
        for part in event.content.parts:
            if not part.text:
                continue
            self._streamed.add(event.id)
            if part.thought:
                self._reasoning_delta(event.id, part.text, out)
            else:
                self._text_delta(event.id, part.text, out)

    def _final_parts(self, event: Event, out: list[bytes]) -> None:
        assert event.content is not None and event.content.parts is not None
        streamed = event.id in self._streamed
        long_running = event.long_running_tool_ids or ()
        for part in event.content.parts:
            if part.text:
                if streamed:
                    continue  # already sent as deltas
                if part.thought:
                    self._reasoning_delta(event.id, part.text, out)
                else:
                    self._text_delta(event.id, part.text, out)
            elif part.function_call is not None:
                call = part.function_call
                call_id = call.id or f"{event.id}:{len(self._calls)}"
                self._close_text(out)
                self._close_reasoning(out)
                self._model_step(out)
                self._calls.add(call_id)
                if call_id in long_running:
                    self._client_calls.add(call_id)
                chunk = {
                    "type": "tool-input-available",
                    "toolCallId": call_id,
                    "toolName": call.name or "",
                    "input": call.args if call.args is not None else {},
                    "dynamic": True,
                }
                out.append(_chunk(chunk))
            elif part.inline_data is not None or part.file_data is not None:
                file = _file_chunk(part)
                if file is not None:
                    self._close_text(out)
                    self._close_reasoning(out)
                    self._model_step(out)
                    out.append(_chunk(file))
            elif part.function_response is not None:
                response = part.function_response
                call_id = response.id or ""
                self._step_has_results = True  # the model's next output is a new step
                if call_id not in self._calls or call_id in self._client_calls:
                    continue  # unknown to the client, or its output is the client's to give
                self._close_text(out)
                self._close_reasoning(out)
                out.append(_chunk(_tool_output(call_id, response.response)))

    def _model_step(self, out: list[bytes]) -> None:
        """Open a step for model output; model output after tool results starts a new one."""
        if self._step_open and not self._step_has_results:
            return
        if self._step_open:
            out.append(_chunk({"type": "finish-step"}))
        out.append(_chunk({"type": "start-step"}))
        self._step_open = True
        self._step_has_results = False

    def _text_delta(self, event_id: str, text: str, out: list[bytes]) -> None:
        if self._text is None or self._text[1] != event_id:
            self._close_text(out)
            self._close_reasoning(out)
            self._model_step(out)
            part_id = self._new_part_id(event_id)
            self._text = (part_id, event_id)
            out.append(_chunk({"type": "text-start", "id": part_id}))
        out.append(_chunk({"type": "text-delta", "id": self._text[0], "delta": text}))

    def _reasoning_delta(self, event_id: str, text: str, out: list[bytes]) -> None:
        if self._reasoning is None or self._reasoning[1] != event_id:
            self._close_reasoning(out)
            self._close_text(out)
            self._model_step(out)
            part_id = self._new_part_id(event_id)
            self._reasoning = (part_id, event_id)
            out.append(_chunk({"type": "reasoning-start", "id": part_id}))
        out.append(_chunk({"type": "reasoning-delta", "id": self._reasoning[0], "delta": text}))

    def _close_text(self, out: list[bytes]) -> None:
        if self._text is not None:
            out.append(_chunk({"type": "text-end", "id": self._text[0]}))
            self._text = None

    def _close_reasoning(self, out: list[bytes]) -> None:
        if self._reasoning is not None:
            out.append(_chunk({"type": "reasoning-end", "id": self._reasoning[0]}))
            self._reasoning = None

    def _new_part_id(self, event_id: str) -> str:
        """The event's id, suffixed when the event already has a part (ids must not repeat)."""
        part_id = event_id
        n = 1
        while part_id in self._part_ids:
            n += 1
            part_id = f"{event_id}-{n}"
        self._part_ids.add(part_id)
        return part_id


def _tool_output(call_id: str, response: Any) -> dict[str, Any]:
    """`tool-output-error` for an error-shaped response (`{"error": "..."}`), else the output."""
    if isinstance(response, dict) and len(response) == 1 and isinstance(response.get("error"), str):
        return {
            "type": "tool-output-error",
            "toolCallId": call_id,
            "errorText": response["error"],
            "dynamic": True,
        }
    output = response if response is not None else {}
    return {
        "type": "tool-output-available",
        "toolCallId": call_id,
        "output": output,
        "dynamic": True,
    }


def _file_chunk(part: types.Part) -> dict[str, Any] | None:
    """`file{url, mediaType}`: inline data as a `data:` URL, a file reference as its URI."""
    if part.inline_data is not None and part.inline_data.data is not None:
        media_type = part.inline_data.mime_type or "application/octet-stream"
        data = base64.b64encode(part.inline_data.data).decode()
        return {"type": "file", "url": f"data:{media_type};base64,{data}", "mediaType": media_type}
    if part.file_data is not None and part.file_data.file_uri:
        media_type = part.file_data.mime_type or "application/octet-stream"
        return {"type": "file", "url": part.file_data.file_uri, "mediaType": media_type}
    return None


def _chunk(chunk: dict[str, Any]) -> bytes:
    """One SSE frame; JSON text never holds a raw newline, so one `data:` line is enough.

    pydantic-core's encoder: compact UTF-8 in one call (faster than `json.dumps` with options,
    on the per-token path), and NaN or infinity become `null`, which JavaScript can parse.
    """
    return b"data: " + to_json(chunk, fallback=str) + b"\n\n"
