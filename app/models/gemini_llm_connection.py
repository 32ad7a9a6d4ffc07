"""GeminiLlmConnection: one google-genai live session, as a BaseLlmConnection."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, Iterator
from typing import Literal

from google.genai import errors as genai_errors  # it defines its own CancelledError
from google.genai import types
from google.genai.live import AsyncSession

from app.events.llm_response import LlmResponse
from app.models.base_llm_connection import BaseLlmConnection

logger = logging.getLogger(__name__)

SESSION_RESUMPTION_HANDLE = "live_session_resumption_handle"
"""`custom_metadata` key: the newest handle to resume this session with (a str)."""

GO_AWAY = "live_go_away"
"""`custom_metadata` key: the server will close soon; value `{"time_left": "10s"}`."""

TOOL_CALL_CANCELLATION = "live_tool_call_cancellation"
"""`custom_metadata` key: ids of function calls the server cancelled (a list of str)."""

_NORMAL_CLOSURE = 1000

_Kind = Literal["input_transcription", "output_transcription"]


class GeminiLlmConnection(BaseLlmConnection):
    """A live Gemini session (`google.genai.live.AsyncSession`) behind BaseLlmConnection.

    `receive()` turns server messages into LlmResponses. Text and audio stream as partial
    responses; each turn's text and transcriptions are also yielded once, aggregated and
    non-partial, which is what a caller stores. See `receive` for the exact mapping.
    """

    def __init__(self, session: AsyncSession) -> None:
        self._session = session
        self._text = ""
        self._thought = ""
        self._transcripts: dict[_Kind, str] = {
            "input_transcription": "",
            "output_transcription": "",
        }
        self._usage: types.GenerateContentResponseUsageMetadata | None = None

    @property
    def session(self) -> AsyncSession:
        """The underlying google-genai session."""
        return self._session

    async def send_history(self, history: list[types.Content]) -> None:
        """Send the text of past turns; the model answers only if the last turn is the user's.

        Only non-thought text parts are sent: audio, files and function calls or responses of
        past turns are dropped, and turns left empty are skipped. Nothing is sent when
        nothing is left.
        """
        turns: list[types.Content | types.ContentDict] = []
        last_role = None
        for content in history:
            parts = [
                types.Part(text=p.text) for p in content.parts or [] if p.text and not p.thought
            ]
            if parts:
                last_role = content.role or "user"
                turns.append(types.Content(role=last_role, parts=parts))
        if not turns:
            return
        await self._session.send_client_content(turns=turns, turn_complete=last_role == "user")

    async def send_content(self, content: types.Content) -> None:
        """Send function responses as a tool response, anything else as a complete user turn.

        Raises:
            ValueError: a function response has no `id` (the Live API requires it).
        """
        responses = [p.function_response for p in content.parts or [] if p.function_response]
        if responses:
            await self._session.send_tool_response(function_responses=responses)
        else:
            await self._session.send_client_content(turns=[content], turn_complete=True)

    async def send_realtime(self, blob: types.Blob) -> None:
        """Send an audio chunk (`audio/*`) or another media chunk (images, video frames)."""
        if (blob.mime_type or "").startswith("audio/"):
            await self._session.send_realtime_input(audio=blob)
        else:
            await self._session.send_realtime_input(media=blob)

    async def send_activity_start(self) -> None:
        """Signal that the user started speaking (manual activity detection)."""
        await self._session.send_realtime_input(activity_start=types.ActivityStart())

    async def send_activity_end(self) -> None:
        """Signal that the user stopped speaking (manual activity detection)."""
        await self._session.send_realtime_input(activity_end=types.ActivityEnd())

    async def send_audio_stream_end(self) -> None:
        """Signal that the microphone paused, so the server flushes the audio it buffered."""
        await self._session.send_realtime_input(audio_stream_end=True)

    async def close(self) -> None:
        """Close the WebSocket; `receive()` then ends."""
        await self._session.close()

    async def receive(self) -> AsyncGenerator[LlmResponse, None]:
        """Yield the server's messages as LlmResponses until the connection closes.

        Per server message, in this order (`partial` is True or unset, never False):

        1. `serverContent.inputTranscription`: for a chunk with text, `input_transcription`
           = the SDK's Transcription as received (a delta; `finished` kept), `partial=True`.
           The user's transcript is then finalized (see "finalize").
        2. `serverContent.modelTurn`: text, thought text and inline data (audio) parts, as one
           `content` (role "model") with `partial=True`; text is accumulated, audio is not.
           Other parts (e.g. code execution) come non-partial, after finalizing the text.
        3. `serverContent.outputTranscription`: like 1, in `output_transcription`.
        4. `serverContent.interrupted`: finalize, then `LlmResponse(interrupted=True)`.
        5. `serverContent.turnComplete`: finalize, then `LlmResponse(turn_complete=True,
           usage_metadata=...)` with the turn's last usage (`response_token_count` becomes
           `candidates_token_count`).
        6. `toolCall`: finalize, then `content` (role "model") with one `function_call` part per
           call, non-partial. Answer with `send_content` (function responses with the ids).
        7. `toolCallCancellation`: `custom_metadata={"live_tool_call_cancellation": [ids]}`.
        8. `sessionResumptionUpdate` with a new handle:
           `custom_metadata={"live_session_resumption_handle": handle}`.
        9. `goAway`: `custom_metadata={"live_go_away": {"time_left": "10s"}}`; the server
           closes soon: reconnect with the last handle in
           `live_connect_config.session_resumption.handle`.

        "Finalize" yields, only for what was accumulated since the last finalize, non-partial:
        the input transcript (`Transcription(text=all, finished=True)`; done as soon as the
        model starts answering, so it precedes the answer), the model's text (`content` with
        a thought part, then a text part), and the output transcript. A transcription chunk
        with `finished=True` finalizes its own transcript at once. `generationComplete` and
        `setupComplete` yield nothing.

        When the server closes normally (1000) or `close()` was called, finalize and return.
        Any other close or API error finalizes, yields one `LlmResponse(error_code=..,
        error_message=..)` (the status name or the numeric close code, e.g. "1011") and
        returns.
        """
        while True:
            received = 0
            try:
                # The SDK annotates receive() as AsyncIterator; it is an async generator.
                messages_gen = self._session.receive()
                async with contextlib.aclosing(messages_gen) as messages:  # type: ignore[type-var]
                    async for message in messages:
                        received += 1
                        for response in self._convert(message):
                            yield response
            except genai_errors.APIError as error:
                for response in self._finalize():
                    yield response
                if error.code == _NORMAL_CLOSURE:
                    logger.info("live session closed")
                    return
                code = api_error_code(error)
                logger.warning("live session failed code=%s", code)
                message_text = error.message or (
                    error.details if isinstance(error.details, str) and error.details else ""
                )
                yield LlmResponse(error_code=code, error_message=message_text or str(error))
                return
            if not received:  # cannot happen with google-genai; never spin
                return

    def _convert(self, message: types.LiveServerMessage) -> Iterator[LlmResponse]:
        if message.usage_metadata is not None:
            self._usage = _usage(message.usage_metadata)
        server = message.server_content
        if server is not None:
            if server.input_transcription is not None:
                yield from self._transcription("input_transcription", server.input_transcription)
            turn = server.model_turn
            if turn is not None and turn.parts:
                yield from self._finalize_transcript("input_transcription")
                yield from self._model_parts(turn.parts)
            if server.output_transcription is not None:
                yield from self._finalize_transcript("input_transcription")
                yield from self._transcription("output_transcription", server.output_transcription)
            if server.interrupted:
                yield from self._finalize()
                yield LlmResponse(interrupted=True)
            if server.turn_complete:
                yield from self._finalize()
                usage, self._usage = self._usage, None
                yield LlmResponse(turn_complete=True, usage_metadata=usage)
        if message.tool_call is not None and message.tool_call.function_calls:
            yield from self._finalize()
            parts = [types.Part(function_call=c) for c in message.tool_call.function_calls]
            yield LlmResponse(content=types.Content(role="model", parts=parts))
        cancellation = message.tool_call_cancellation
        if cancellation is not None and cancellation.ids:
            yield LlmResponse(custom_metadata={TOOL_CALL_CANCELLATION: list(cancellation.ids)})
        update = message.session_resumption_update
        if update is not None and update.new_handle:
            yield LlmResponse(custom_metadata={SESSION_RESUMPTION_HANDLE: update.new_handle})
        if message.go_away is not None:
            go_away = message.go_away.model_dump(mode="json", exclude_none=True)
            yield LlmResponse(custom_metadata={GO_AWAY: go_away})

    def _model_parts(self, parts: list[types.Part]) -> Iterator[LlmResponse]:
        streamed = [p for p in parts if p.text is not None or p.inline_data is not None]
        others = [p for p in parts if p.text is None and p.inline_data is None]
        for part in streamed:
            if part.text is None:
                continue
            if part.thought:
                self._thought += part.text
            else:
                self._text += part.text
        if streamed:
            yield LlmResponse(content=types.Content(role="model", parts=streamed), partial=True)
        if others:
            yield from self._finalize_text()
            yield LlmResponse(content=types.Content(role="model", parts=others))

    def _transcription(self, kind: _Kind, chunk: types.Transcription) -> Iterator[LlmResponse]:
        if chunk.text:
            self._transcripts[kind] += chunk.text
            yield _transcript_response(kind, chunk, partial=True)
        if chunk.finished:
            yield from self._finalize_transcript(kind)

    def _finalize(self) -> Iterator[LlmResponse]:
        yield from self._finalize_transcript("input_transcription")
        yield from self._finalize_text()
        yield from self._finalize_transcript("output_transcription")

    def _finalize_text(self) -> Iterator[LlmResponse]:
        parts: list[types.Part] = []
        if self._thought:
            parts.append(types.Part(text=self._thought, thought=True))
        if self._text:
            parts.append(types.Part(text=self._text))
        self._thought = self._text = ""
        if parts:
            yield LlmResponse(content=types.Content(role="model", parts=parts))

    def _finalize_transcript(self, kind: _Kind) -> Iterator[LlmResponse]:
        text, self._transcripts[kind] = self._transcripts[kind], ""
        if text:
            final = types.Transcription(text=text, finished=True)
            yield _transcript_response(kind, final, partial=None)


def _transcript_response(
    kind: _Kind, transcription: types.Transcription, *, partial: bool | None
) -> LlmResponse:
    if kind == "input_transcription":
        return LlmResponse(input_transcription=transcription, partial=partial)
    return LlmResponse(output_transcription=transcription, partial=partial)


def api_error_code(error: genai_errors.APIError) -> str:
    """Return the error's status name (e.g. "RESOURCE_EXHAUSTED"), else its numeric code."""
    return str(error.status) if error.status else str(error.code)


def _usage(usage: types.UsageMetadata) -> types.GenerateContentResponseUsageMetadata:
    """Map Live usage (response_*) onto the REST shape (candidates_*) LlmResponse holds."""
    return types.GenerateContentResponseUsageMetadata(
        prompt_token_count=usage.prompt_token_count,
        cached_content_token_count=usage.cached_content_token_count,
        candidates_token_count=usage.response_token_count,
        tool_use_prompt_token_count=usage.tool_use_prompt_token_count,
        thoughts_token_count=usage.thoughts_token_count,
        total_token_count=usage.total_token_count,
        prompt_tokens_details=usage.prompt_tokens_details,
        cache_tokens_details=usage.cache_tokens_details,
        candidates_tokens_details=usage.response_tokens_details,
        tool_use_prompt_tokens_details=usage.tool_use_prompt_tokens_details,
        traffic_type=usage.traffic_type,
    )
