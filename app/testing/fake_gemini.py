"""A fake Gemini server that speaks the real REST and Live wire protocol.

`FakeGemini` is an ASGI app. Point the real `google-genai` client at it and every call takes
the next item of its script:

- `str`: a text reply.
- `types.Part` or a list of Parts: sent as the model's parts; a function call without an
  `id` gets one (`fc-1`, `fc-2`, ...).
- `dict`: sent verbatim, as the GenerateContentResponse JSON (REST) or as one server message
  (Live).
- `FakeGeminiError`: REST answers the Google error body with that HTTP status; Live closes the
  WebSocket with `close_code` and the message as reason.
- `FakeLiveInterrupt` (Live only): a partial model turn, then `serverContent.interrupted`.

An exhausted script answers HTTP 500 (REST) or closes with 1011 (Live), saying so.

REST runs in process (`fake.http_options()`); Live needs a socket with TLS, because the SDK
always dials `wss://`: `async with serve_fake_gemini(fake) as served:` runs it on uvicorn and
`served.http_options()` trusts its certificate. See `../../shared/reference/google-genai-wire.md`.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import math
import re
import socket
import ssl
import struct
import tempfile
from collections import deque
from collections.abc import AsyncIterator, Iterable, Iterator, Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any, NoReturn, TypeAlias

import httpx
import uvicorn
from google.genai import types
from pydantic.alias_generators import to_camel
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route, WebSocketRoute
from starlette.types import Receive, Scope, Send
from starlette.websockets import WebSocket, WebSocketDisconnect

__all__ = [
    "FakeGemini",
    "FakeGeminiError",
    "FakeLiveInterrupt",
    "RecordedRequest",
    "ScriptItem",
    "ServedFakeGemini",
    "serve_fake_gemini",
]

_STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    409: "ABORTED",
    429: "RESOURCE_EXHAUSTED",
    499: "CANCELLED",
    500: "INTERNAL",
    501: "NOT_IMPLEMENTED",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}

_OUTPUT_AUDIO_MIME = "audio/pcm;rate=24000"
_OUTPUT_RATE = 24_000
_AUDIO_CHUNKS = 3
_AUDIO_CHUNK_SAMPLES = 2_400  # 0.1 s per chunk


class FakeGeminiError(Exception):
    """A scripted failure: the Google error body over REST, a close frame over Live."""

    def __init__(
        self,
        status: int = 500,
        message: str = "Internal error encountered.",
        status_name: str | None = None,
        *,
        close_code: int = 1011,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.status_name = status_name or _STATUS_NAMES.get(status, "UNKNOWN")
        self.close_code = close_code

    def body(self) -> dict[str, Any]:
        """Return the JSON error body Google APIs send."""
        return {"error": {"code": self.status, "message": self.message, "status": self.status_name}}


@dataclass(frozen=True)
class FakeLiveInterrupt:
    """Live only: start answering `text`, then report `serverContent.interrupted`."""

    text: str


ScriptItem: TypeAlias = (
    str | types.Part | Sequence[types.Part] | dict[str, Any] | FakeGeminiError | FakeLiveInterrupt
)


@dataclass(frozen=True)
class RecordedRequest:
    """One REST call the fake received."""

    path: str
    query: str
    headers: dict[str, str]
    body: dict[str, Any]


class FakeGemini:
    """An ASGI app answering Gemini REST and Live calls from a script."""

    def __init__(self, responses: Iterable[ScriptItem] = (), *, require_api_key: bool = True):
        self._script: deque[ScriptItem] = deque(responses)
        self._require_api_key = require_api_key
        self._call_ids = itertools.count(1)
        self._response_ids = itertools.count(1)
        self._handles = itertools.count(1)
        self._go_away_time_left: str | None = None
        self.request_log: list[RecordedRequest] = []
        """Every REST call, in order, with path, query and headers."""
        self.live_frames: list[dict[str, Any]] = []
        """Every client frame received over Live (all connections), parsed JSON."""
        self.live_setups: list[dict[str, Any]] = []
        """The `setup` of each Live connection, in order."""
        self.resumption_handles: list[str | None] = []
        """The `sessionResumption.handle` each Live setup carried (None when absent)."""
        self.live_headers: list[dict[str, str]] = []
        """The HTTP headers of each Live connection's upgrade request."""
        self._app = Starlette(
            routes=[
                Route("/{version}/models/{target:path}", self._rest, methods=["POST"]),
                WebSocketRoute(
                    "/ws/google.ai.generativelanguage.{version}.GenerativeService"
                    ".BidiGenerateContent",
                    self._live,
                ),
            ]
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._app(scope, receive, send)

    @property
    def requests(self) -> list[dict[str, Any]]:
        """The JSON body of every REST call, in order."""
        return [r.body for r in self.request_log]

    @property
    def remaining(self) -> int:
        """How many script items are left."""
        return len(self._script)

    def add(self, *items: ScriptItem) -> None:
        """Append items to the script."""
        self._script.extend(items)

    def go_away_after_turn(self, time_left: str = "10s") -> None:
        """Make Live send `goAway{timeLeft}` after the next completed turn, then close (1000)."""
        self._go_away_time_left = time_left

    def http_options(self, *, api_version: str | None = None) -> types.HttpOptions:
        """Return HttpOptions that reach this app in process (REST only; Live needs a socket)."""
        client = httpx.AsyncClient(transport=httpx.ASGITransport(app=self))
        return types.HttpOptions(
            base_url="http://fake", api_version=api_version, httpx_async_client=client
        )

    # --- script -----------------------------------------------------------------------------

    def _next_item(self) -> ScriptItem | FakeGeminiError:
        if not self._script:
            return FakeGeminiError(500, "FakeGemini: the script is exhausted (no response left).")
        return self._script.popleft()

    def _parts_of(self, item: str | types.Part | Sequence[types.Part]) -> list[types.Part]:
        parts = [types.Part(text=item)] if isinstance(item, str) else _as_parts(item)
        return [self._with_call_id(p) for p in parts]

    def _with_call_id(self, part: types.Part) -> types.Part:
        call = part.function_call
        if call is None or call.id:
            return part
        call = call.model_copy(update={"id": f"fc-{next(self._call_ids)}"})
        return part.model_copy(update={"function_call": call})

    # --- REST -------------------------------------------------------------------------------

    async def _rest(self, request: Request) -> Response:
        model, _, method = request.path_params["target"].rpartition(":")
        try:
            body = json.loads(await request.body() or b"{}")
        except json.JSONDecodeError:
            return _error(FakeGeminiError(400, "Invalid JSON payload received."))
        self.request_log.append(
            RecordedRequest(request.url.path, request.url.query, dict(request.headers), body)
        )
        if self._require_api_key and not (
            request.headers.get("x-goog-api-key") or request.query_params.get("key")
        ):
            return _error(FakeGeminiError(401, "Method doesn't allow unregistered callers."))
        if method not in ("generateContent", "streamGenerateContent"):
            return _error(FakeGeminiError(404, f"Method not found: {method}."))
        item = self._next_item()
        if isinstance(item, FakeGeminiError):
            return _error(item)
        if isinstance(item, FakeLiveInterrupt):
            return _error(FakeGeminiError(500, "FakeGemini: FakeLiveInterrupt is Live-only."))
        if method == "generateContent":
            return JSONResponse(
                item if isinstance(item, dict) else self._response(model, body, item)
            )
        chunks = [item] if isinstance(item, dict) else self._stream_chunks(model, body, item)
        if request.query_params.get("alt") != "sse":
            return JSONResponse(chunks)
        frames = (f"data: {json.dumps(chunk)}\r\n\r\n" for chunk in chunks)
        return StreamingResponse(frames, media_type="text/event-stream")

    def _response(
        self, model: str, body: dict[str, Any], item: str | types.Part | Sequence[types.Part]
    ) -> dict[str, Any]:
        parts = self._parts_of(item)
        return self._chunk(model, parts, final=_usage(body, parts))

    def _stream_chunks(
        self, model: str, body: dict[str, Any], item: str | types.Part | Sequence[types.Part]
    ) -> list[dict[str, Any]]:
        parts = self._parts_of(item)
        pieces: list[types.Part] = []
        for part in parts:
            if part.text is None:
                pieces.append(part)
            else:
                pieces.extend(part.model_copy(update={"text": t}) for t in _words(part.text))
        usage = _usage(body, parts)
        pieces = pieces or [types.Part(text="")]
        response_id = f"fake-response-{next(self._response_ids)}"
        return [
            self._chunk(
                model, [piece], final=usage if i == len(pieces) - 1 else None, rid=response_id
            )
            for i, piece in enumerate(pieces)
        ]

    def _chunk(
        self,
        model: str,
        parts: list[types.Part],
        *,
        final: dict[str, int] | None,
        rid: str | None = None,
    ) -> dict[str, Any]:
        candidate: dict[str, Any] = {
            "content": {"role": "model", "parts": [_part_json(p) for p in parts]},
            "index": 0,
        }
        chunk: dict[str, Any] = {"candidates": [candidate]}
        if final is not None:
            candidate["finishReason"] = "STOP"
            chunk["usageMetadata"] = final
        chunk["modelVersion"] = model.removeprefix("models/")
        chunk["responseId"] = rid or f"fake-response-{next(self._response_ids)}"
        return chunk

    # --- Live -------------------------------------------------------------------------------

    async def _live(self, websocket: WebSocket) -> None:
        await websocket.accept()
        self.live_headers.append(dict(websocket.headers))
        session = _LiveSession(self, websocket)
        with contextlib.suppress(WebSocketDisconnect, _LiveClosed):
            await session.run()


class _LiveClosed(Exception):
    """The fake closed the WebSocket on purpose."""


@dataclass
class _LiveSession:
    """One Live connection: a setup, then user turns answered from the script."""

    fake: FakeGemini
    ws: WebSocket
    audio: bool = False
    resumable: bool = False
    heard_bytes: int = 0

    async def run(self) -> None:
        setup = _get(await self._frame(), "setup")
        if not isinstance(setup, dict):
            await self._close(1007, "The first message must be `setup`.")
        self.fake.live_setups.append(setup)
        generation = _get(setup, "generation_config") or {}
        modalities = _get(generation, "response_modalities") or _get(setup, "response_modalities")
        self.audio = "AUDIO" in (modalities or [])
        resumption = _get(setup, "session_resumption")
        self.resumable = resumption is not None
        self.fake.resumption_handles.append(_get(resumption or {}, "handle"))
        if self.fake._require_api_key and not (
            self.ws.headers.get("x-goog-api-key") or self.ws.query_params.get("key")
        ):
            await self._close(1008, "Method doesn't allow unregistered callers.")
        await self._send({"setupComplete": {}})
        while True:
            frame = await self._frame()
            turn = self._user_turn(frame)
            if turn is not None:
                await self._answer(self.fake._next_item(), *turn)

    def _user_turn(self, frame: dict[str, Any]) -> tuple[str, bool] | None:
        """Return (what the user said, whether it was audio) if `frame` ends a user turn."""
        content = _get(frame, "client_content")
        if isinstance(content, dict):
            if not _get(content, "turn_complete"):
                return None
            turns = _get(content, "turns") or []
            return (_text_of(turns[-1]) if turns else "", False)
        realtime = _get(frame, "realtime_input")
        if not isinstance(realtime, dict):
            return None
        audio = _get(realtime, "audio")
        blobs = [audio] if isinstance(audio, dict) else []
        for blob in [_get(realtime, "media"), *(_get(realtime, "media_chunks") or [])]:
            if isinstance(blob, dict) and str(_get(blob, "mime_type")).startswith("audio"):
                blobs.append(blob)
        self.heard_bytes += sum(_decoded_size(_get(blob, "data")) for blob in blobs)
        text = _get(realtime, "text")
        if isinstance(text, str):
            return (text, False)
        ended = _get(realtime, "audio_stream_end") or _get(realtime, "activity_end") is not None
        if ended and self.heard_bytes:
            heard, self.heard_bytes = self.heard_bytes, 0
            return (f"({heard} bytes heard)", True)
        return None

    async def _answer(self, item: ScriptItem, said: str, heard_audio: bool) -> None:
        if isinstance(item, FakeGeminiError):
            await self._close(item.close_code, item.message)
        if isinstance(item, dict):
            await self._send(item)
            return
        if heard_audio and self.audio:
            await self._send({"serverContent": {"inputTranscription": {"text": said}}})
        if isinstance(item, FakeLiveInterrupt):
            words = _words(item.text)
            await self._say("".join(words[: max(1, len(words) // 2)]))
            await self._send({"serverContent": {"interrupted": True}})
            await self._after_turn()
            return
        parts = self.fake._parts_of(item)
        calls = [p.function_call for p in parts if p.function_call is not None]
        text = "".join(p.text or "" for p in parts if not p.thought)
        if text:
            await self._say(text)
        if calls:
            payload = [c.model_dump(mode="json", exclude_none=True) for c in calls]
            await self._send({"toolCall": {"functionCalls": payload}})
            while _get(await self._frame(), "tool_response") is None:
                pass
            await self._answer(self.fake._next_item(), "", False)
            return
        await self._send({"serverContent": {"generationComplete": True}})
        usage = {
            "promptTokenCount": max(1, len(said.split())),
            "responseTokenCount": len(text.split()),
        }
        usage["totalTokenCount"] = usage["promptTokenCount"] + usage["responseTokenCount"]
        await self._send({"serverContent": {"turnComplete": True}, "usageMetadata": usage})
        await self._after_turn()

    async def _say(self, text: str) -> None:
        if not self.audio:
            for word in _words(text):
                turn = {"role": "model", "parts": [{"text": word}]}
                await self._send({"serverContent": {"modelTurn": turn}})
            return
        for chunk in _sine_chunks():
            blob = {"mimeType": _OUTPUT_AUDIO_MIME, "data": chunk}
            await self._send({"serverContent": {"modelTurn": {"parts": [{"inlineData": blob}]}}})
        await self._send({"serverContent": {"outputTranscription": {"text": text}}})

    async def _after_turn(self) -> None:
        if self.resumable:
            handle = f"handle-{next(self.fake._handles)}"
            await self._send({"sessionResumptionUpdate": {"newHandle": handle, "resumable": True}})
        time_left, self.fake._go_away_time_left = self.fake._go_away_time_left, None
        if time_left is not None:
            await self._send({"goAway": {"timeLeft": time_left}})
            await self._close(1000, "go away")

    async def _frame(self) -> dict[str, Any]:
        message = await self.ws.receive()
        if message["type"] == "websocket.disconnect":
            raise WebSocketDisconnect(message.get("code", 1000))
        raw = message.get("text") or message.get("bytes") or b"{}"
        try:
            frame = json.loads(raw)
        except json.JSONDecodeError:
            await self._close(1007, "Invalid JSON frame.")
        if not isinstance(frame, dict):
            await self._close(1007, "A frame must be a JSON object.")
        self.fake.live_frames.append(frame)
        return frame

    async def _send(self, message: dict[str, Any]) -> None:
        await self.ws.send_text(json.dumps(message))

    async def _close(self, code: int, reason: str) -> NoReturn:
        await self.ws.close(code, reason[:120])
        raise _LiveClosed(reason)


# --- serving over TLS ---------------------------------------------------------------------


@dataclass(frozen=True)
class ServedFakeGemini:
    """A FakeGemini running on uvicorn over TLS on 127.0.0.1."""

    fake: FakeGemini
    base_url: str
    """`https://127.0.0.1:<port>` (no trailing slash)."""
    ca_file: Path
    """PEM file of the CA that signed the server certificate."""
    ssl_context: ssl.SSLContext
    """A client context trusting `ca_file`."""

    def http_options(self, *, api_version: str | None = None) -> types.HttpOptions:
        """Return HttpOptions that reach the served fake, REST and Live."""
        return types.HttpOptions(
            base_url=self.base_url,
            api_version=api_version,
            async_client_args=self.client_args(),
        )

    def client_args(self) -> dict[str, Any]:
        """Return `async_client_args` that trust the fake (`ssl` for Live, `verify` for REST)."""
        return {"ssl": self.ssl_context, "verify": self.ssl_context}


@contextlib.asynccontextmanager
async def serve_fake_gemini(fake: FakeGemini) -> AsyncIterator[ServedFakeGemini]:
    """Run `fake` on real uvicorn over TLS on an ephemeral loopback port until exit."""
    import trustme  # a test extra: app.testing must import without it

    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    with tempfile.TemporaryDirectory(prefix="fake-gemini-") as tmp:
        ca_file = Path(tmp) / "ca.pem"
        cert_file = Path(tmp) / "server.pem"
        await asyncio.to_thread(ca.cert_pem.write_to_path, str(ca_file))
        await asyncio.to_thread(cert.private_key_and_cert_chain_pem.write_to_path, str(cert_file))
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        config = uvicorn.Config(
            fake,
            ssl_certfile=str(cert_file),
            lifespan="off",
            ws="websockets-sansio",
            log_level="warning",
            timeout_graceful_shutdown=5,
        )
        server = _ReadyServer(config)
        serving = asyncio.create_task(server.serve(sockets=[sock]))
        try:
            ready = asyncio.create_task(server.ready.wait())
            done, _ = await asyncio.wait({ready, serving}, return_when=asyncio.FIRST_COMPLETED)
            if serving in done:
                ready.cancel()
                serving.result()  # re-raise the start-up failure
                raise RuntimeError("uvicorn stopped before it started")
            context = ssl.create_default_context(cafile=str(ca_file))
            yield ServedFakeGemini(fake, f"https://127.0.0.1:{port}", ca_file, context)
        finally:
            server.should_exit = True
            await serving
            sock.close()


class _ReadyServer(uvicorn.Server):
    """uvicorn.Server that reports readiness and leaves signal handlers alone."""

    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        # The test process owns SIGINT/SIGTERM; uvicorn must not take them over.
        yield


# --- helpers ------------------------------------------------------------------------------


def _error(error: FakeGeminiError) -> JSONResponse:
    return JSONResponse(error.body(), status_code=error.status)


def _get(data: dict[str, Any], snake: str) -> Any:
    """Read a key sent in either spelling (the SDK mixes snake_case and camelCase)."""
    if snake in data:
        return data[snake]
    return data.get(to_camel(snake))


def _as_parts(item: types.Part | Sequence[types.Part]) -> list[types.Part]:
    return [item] if isinstance(item, types.Part) else list(item)


def _part_json(part: types.Part) -> dict[str, Any]:
    return part.model_dump(mode="json", by_alias=True, exclude_none=True)


def _words(text: str) -> list[str]:
    """Split `text` into chunks of one word each; they join back to `text`."""
    return [w for w in re.split(r"(?<=\s)(?=\S)", text) if w] or [text]


def _decoded_size(data: Any) -> int:
    """Return the size of base64 `data`; the SDK sends the URL-safe alphabet."""
    if not isinstance(data, str):
        return 0
    try:
        padded = data.replace("+", "-").replace("/", "_") + "=" * (-len(data) % 4)
        return len(base64.urlsafe_b64decode(padded))
    except ValueError:  # binascii.Error: not base64 at all; count nothing
        return 0


def _text_of(content: Any) -> str:
    if not isinstance(content, dict):
        return ""
    return "".join(str(p.get("text", "")) for p in content.get("parts") or [])


def _count_words(body: dict[str, Any]) -> int:
    contents = list(body.get("contents") or [])
    instruction = _get(body, "system_instruction")
    if instruction:
        contents.append(instruction)
    return sum(len(_text_of(c).split()) for c in contents)


def _usage(body: dict[str, Any], parts: list[types.Part]) -> dict[str, int]:
    """Count a token per word (a non-text part counts one); deterministic, not realistic."""
    prompt = max(1, _count_words(body))
    out = sum(len(p.text.split()) if p.text is not None else 1 for p in parts)
    return {
        "promptTokenCount": prompt,
        "candidatesTokenCount": out,
        "totalTokenCount": prompt + out,
    }


@cache
def _sine_chunks() -> tuple[str, ...]:
    """Return a 440 Hz tone as base64 PCM16 24 kHz chunks (deterministic)."""
    chunks = []
    for c in range(_AUDIO_CHUNKS):
        start = c * _AUDIO_CHUNK_SAMPLES
        samples = (
            round(8000 * math.sin(2 * math.pi * 440 * (start + i) / _OUTPUT_RATE))
            for i in range(_AUDIO_CHUNK_SAMPLES)
        )
        pcm = struct.pack(f"<{_AUDIO_CHUNK_SAMPLES}h", *samples)
        chunks.append(base64.b64encode(pcm).decode())
    return tuple(chunks)
