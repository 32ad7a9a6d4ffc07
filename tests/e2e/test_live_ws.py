"""The live WebSocket end to end: real uvicorn on a loopback port, the real `websockets` client.

The server runs in this process (so a test can script the agent's ScriptedModel and wait on
its connections), on a migrated SQLite file, with an agents dir written per test.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import logging
import math
import socket
import struct
import textwrap
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from app.server.app import create_app
from app.server.protocols import protocol_class
from app.server.settings import Settings
from app.testing import ScriptedModel, function_call
from app.testing.scripted_live import (
    LiveGoAway,
    LiveInterrupt,
    ScriptedLlmConnection,
    live_connections,
)

pytestmark = pytest.mark.e2e

TIMEOUT = 10.0
CHUNK_BYTES = 640  # 20 ms of PCM16 at 16 kHz

AGENT_SOURCE = textwrap.dedent(
    '''
    """A live test app: the test fills the model's script."""

    from __future__ import annotations

    import asyncio
    from typing import Any

    from app.agents import LlmAgent
    from app.testing import ScriptedModel


    def get_time(tz: str) -> dict[str, Any]:
        """Return the time in a time zone."""
        return {"tz": tz, "time": "12:00"}


    async def slow_lookup(query: str) -> dict[str, Any]:
        """Never finishes on its own: the client leaves first."""
        await asyncio.Event().wait()
        return {}


    root_agent = LlmAgent(
        name="live_agent", model=ScriptedModel(), tools=[get_time, slow_lookup]
    )
    '''
)


class _ReadyServer(uvicorn.Server):
    def __init__(self, config: uvicorn.Config) -> None:
        super().__init__(config)
        self.ready = asyncio.Event()

    async def startup(self, sockets: list[socket.socket] | None = None) -> None:
        await super().startup(sockets=sockets)
        self.ready.set()

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # pytest owns the signals


class _LiveClosedLog(logging.Handler):
    """Counts the route's "live closed" log lines; tests wait on it, never sleep."""

    def __init__(self) -> None:
        super().__init__(level=logging.INFO)
        self.closed = 0
        self.changed = asyncio.Event()

    def emit(self, record: logging.LogRecord) -> None:
        if record.getMessage().startswith("live closed"):
            self.closed += 1
            self.changed.set()

    async def wait_closed(self, count: int = 1) -> None:
        async with asyncio.timeout(TIMEOUT):
            while self.closed < count:
                self.changed.clear()
                await self.changed.wait()


@dataclass
class LiveServer:
    base: str
    ws_base: str
    model: ScriptedModel
    log: _LiveClosedLog

    def url(self, sid: str = "s", *, app: str = "live", query: str = "") -> str:
        return f"{self.ws_base}/apps/{app}/users/u/sessions/{sid}/live" + (
            f"?{query}" if query else ""
        )

    def connection(self, index: int = -1) -> ScriptedLlmConnection:
        return live_connections(self.model)[index]


@pytest.fixture
async def server(tmp_path: Path) -> AsyncIterator[LiveServer]:
    agents = tmp_path / "agents"
    (agents / "live").mkdir(parents=True)
    (agents / "live" / "agent.py").write_text(AGENT_SOURCE)
    settings = Settings(
        database_url=f"sqlite+aiosqlite:///{tmp_path / 'live.db'}",
        agents_dir=agents,
        migrate_on_start=True,
        log_level="warning",
    )
    app = create_app(settings)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(
        app, log_level="warning", timeout_graceful_shutdown=2, http=protocol_class()
    )
    uv = _ReadyServer(config)
    serving = asyncio.create_task(uv.serve(sockets=[sock]))
    route_logger = logging.getLogger("app.server.routes.live")
    log = _LiveClosedLog()
    previous_level = route_logger.level
    route_logger.setLevel(logging.INFO)
    route_logger.addHandler(log)
    try:
        async with asyncio.timeout(TIMEOUT):
            await uv.ready.wait()
        model = app.state.services.runners.runner("live").agent.canonical_model
        assert isinstance(model, ScriptedModel)
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as http:
            created = await http.post("/apps/live/users/u/sessions", json={"sessionId": "s"})
            assert created.status_code == 201, created.text
        yield LiveServer(f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}", model, log)
    finally:
        route_logger.removeHandler(log)
        route_logger.setLevel(previous_level)
        uv.should_exit = True
        await serving
        sock.close()


# --- helpers ----------------------------------------------------------------------------------


def describe(event: dict[str, Any]) -> str:
    """One line per event JSON: `~` marks a partial (not stored), `=` a stored one."""
    mark = "~" if event.get("partial") else "="
    who = event["author"]
    if "errorCode" in event:
        return f"{who} error {event['errorCode']}"
    if event.get("turnComplete"):
        return f"{who} turn_complete"
    if event.get("interrupted"):
        return f"{who} interrupted"
    if "inputTranscription" in event:
        return f"{who} input{mark}{event['inputTranscription'].get('text', '')}"
    if "outputTranscription" in event:
        return f"{who} output{mark}{event['outputTranscription'].get('text', '')}"
    part = event["content"]["parts"][0]
    if "functionCall" in part:
        return f"{who} call {part['functionCall']['name']}"
    if "functionResponse" in part:
        return f"{who} response {part['functionResponse']['name']}"
    if "inlineData" in part:
        return f"{who} audio{mark}"
    return f"{who} text{mark}{part.get('text', '')}"


def squash(lines: list[str]) -> list[str]:
    return [line for i, line in enumerate(lines) if i == 0 or lines[i - 1] != line]


async def frames_until(ws: ClientConnection, stop: str) -> list[dict[str, Any]]:
    """Receive JSON frames until one whose description starts with `stop`."""
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(TIMEOUT):
        while True:
            frame = json.loads(await ws.recv())
            frames.append(frame)
            if "error" not in frame and describe(frame).startswith(stop):
                return frames


async def next_frame(ws: ClientConnection) -> dict[str, Any]:
    async with asyncio.timeout(TIMEOUT):
        return json.loads(await ws.recv())  # type: ignore[no-any-return]


async def close_of(ws: ClientConnection) -> tuple[int | None, str, list[dict[str, Any]]]:
    """Read until the server closes; return its close code, reason and the frames before."""
    frames: list[dict[str, Any]] = []
    async with asyncio.timeout(TIMEOUT):
        with contextlib.suppress(ConnectionClosed):
            while True:
                frames.append(json.loads(await ws.recv()))
    assert ws.close_code is not None
    return ws.close_code, ws.close_reason or "", frames


def text_turn(text: str) -> str:
    return json.dumps({"content": {"role": "user", "parts": [{"text": text}]}})


async def stored(server: LiveServer, sid: str = "s") -> list[str]:
    async with httpx.AsyncClient(base_url=server.base) as http:
        response = await http.get(f"/apps/live/users/u/sessions/{sid}")
    assert response.status_code == 200, response.text
    return [describe(e) for e in response.json()["events"]]


def pcm_file(path: Path, seconds: float = 1.0) -> Path:
    """Write a 220 Hz tone as raw PCM16 LE mono at 16 kHz."""
    count = int(16_000 * seconds)
    samples = (round(6000 * math.sin(2 * math.pi * 220 * i / 16_000)) for i in range(count))
    path.write_bytes(struct.pack(f"<{count}h", *samples))
    return path


# --- turns ------------------------------------------------------------------------------------


async def test_pcm_stream_in_gives_audio_and_transcriptions_out(
    server: LiveServer, tmp_path: Path
) -> None:
    server.model.responses.append("Sunny and warm")
    audio = pcm_file(tmp_path / "speech.pcm").read_bytes()
    chunks = [audio[i : i + CHUNK_BYTES] for i in range(0, len(audio), CHUNK_BYTES)]
    assert len(chunks) == 50 and all(len(c) == CHUNK_BYTES for c in chunks)

    async with connect(server.url()) as ws:
        for chunk in chunks:
            await ws.send(chunk)
        await ws.send(json.dumps({"audioStreamEnd": True}))
        frames = await frames_until(ws, "live_agent turn_complete")
        await ws.send(json.dumps({"close": True}))
        code, _, rest = await close_of(ws)

    assert code == 1000 and rest == []
    assert squash([describe(f) for f in frames]) == [
        "user input~(32000 bytes heard)",
        "user input=(32000 bytes heard)",
        "live_agent audio~",
        "live_agent output~Sunny ",
        "live_agent output~and ",
        "live_agent output~warm",
        "live_agent output=Sunny and warm",
        "live_agent turn_complete",
    ]
    audio_out = [f for f in frames if describe(f) == "live_agent audio~"]
    blob = audio_out[0]["content"]["parts"][0]["inlineData"]
    assert blob["mimeType"] == "audio/pcm;rate=24000"
    assert len(base64.urlsafe_b64decode(blob["data"])) == 1920  # pydantic: URL-safe
    stored_frames = [f for f in frames if not f.get("partial")]
    assert all(isinstance(f.get("seq"), int) for f in stored_frames)
    assert server.connection().blob_bytes == len(audio)
    assert server.connection().closed
    assert await stored(server) == [
        "user input=(32000 bytes heard)",
        "live_agent output=Sunny and warm",
        "live_agent turn_complete",
    ]


async def test_text_turn_in_text_modality(server: LiveServer) -> None:
    server.model.responses.append("Hello there")

    async with connect(server.url(query="modalities=TEXT")) as ws:
        await ws.send(text_turn("hi"))
        frames = await frames_until(ws, "live_agent turn_complete")

    assert [describe(f) for f in frames] == [
        "user text=hi",
        "live_agent text~Hello ",
        "live_agent text~there",
        "live_agent text=Hello there",
        "live_agent turn_complete",
    ]
    await server.log.wait_closed()
    assert await stored(server) == [
        "user text=hi",
        "live_agent text=Hello there",
        "live_agent turn_complete",
    ]


async def test_snake_case_requests_and_blob_frames_are_accepted(server: LiveServer) -> None:
    server.model.responses.append("ok")
    data = base64.b64encode(b"\x01\x00" * 320).decode()

    async with connect(server.url(query="modalities=text")) as ws:
        await ws.send(json.dumps({"activity_start": {}}))
        await ws.send(json.dumps({"blob": {"mime_type": "audio/pcm;rate=16000", "data": data}}))
        await ws.send(json.dumps({"activity_end": {}}))
        frames = await frames_until(ws, "live_agent turn_complete")

    assert describe(frames[-2]) == "live_agent text=ok"
    connection = server.connection()
    assert (connection.activity_starts, connection.activity_ends) == (1, 1)
    assert connection.blob_bytes == 640


async def test_tool_call_round_trip(server: LiveServer) -> None:
    server.model.responses.extend([function_call("get_time", {"tz": "UTC"}), "It is noon"])

    async with connect(server.url(query="modalities=TEXT")) as ws:
        await ws.send(text_turn("time?"))
        frames = await frames_until(ws, "live_agent turn_complete")

    assert squash([describe(f) for f in frames]) == [
        "user text=time?",
        "live_agent call get_time",
        "live_agent response get_time",
        "live_agent text~It ",
        "live_agent text~is ",
        "live_agent text~noon",
        "live_agent text=It is noon",
        "live_agent turn_complete",
    ]
    response = frames[2]["content"]["parts"][0]["functionResponse"]
    assert response["response"] == {"tz": "UTC", "time": "12:00"}
    sent = server.connection().contents[-1].parts[0].function_response  # type: ignore[index]
    assert sent is not None and sent.response == {"tz": "UTC", "time": "12:00"}
    await server.log.wait_closed()
    assert await stored(server) == [
        "user text=time?",
        "live_agent call get_time",
        "live_agent response get_time",
        "live_agent text=It is noon",
        "live_agent turn_complete",
    ]


async def test_interruption_is_streamed_and_stored(server: LiveServer) -> None:
    server.model.responses.extend([LiveInterrupt("one two three four"), "ok"])

    async with connect(server.url()) as ws:
        await ws.send(text_turn("story"))
        frames = await frames_until(ws, "live_agent interrupted")
        await ws.send(text_turn("stop"))
        await frames_until(ws, "live_agent turn_complete")

    assert squash([describe(f) for f in frames]) == [
        "user text=story",
        "live_agent audio~",
        "live_agent output~one ",
        "live_agent output~two ",
        "live_agent output=one two ",
        "live_agent interrupted",
    ]
    await server.log.wait_closed()
    assert await stored(server) == [
        "user text=story",
        "live_agent output=one two ",
        "live_agent interrupted",
        "user text=stop",
        "live_agent output=ok",
        "live_agent turn_complete",
    ]


async def test_go_away_is_resumed_transparently(server: LiveServer) -> None:
    server.model.responses.extend(["first", LiveGoAway(), "second"])

    async with connect(server.url(query="modalities=TEXT")) as ws:
        await ws.send(text_turn("one"))
        await frames_until(ws, "live_agent turn_complete")
        await ws.send(text_turn("two"))
        frames = await frames_until(ws, "live_agent turn_complete")

    assert [describe(f) for f in frames][-2:] == [
        "live_agent text=second",
        "live_agent turn_complete",
    ]
    first, second = live_connections(server.model)
    assert first.closed and second.resumed_with is not None
    await server.log.wait_closed()
    assert await stored(server) == [
        "user text=one",
        "live_agent text=first",
        "live_agent turn_complete",
        "user text=two",
        "live_agent text=second",
        "live_agent turn_complete",
    ]


# --- leaving ----------------------------------------------------------------------------------


async def test_client_vanishing_mid_turn_closes_the_model_and_keeps_the_session_usable(
    server: LiveServer,
) -> None:
    server.model.responses.extend([function_call("slow_lookup", {"query": "x"}), "later"])

    ws = await connect(server.url(query="modalities=TEXT"))
    await ws.send(text_turn("look it up"))
    await frames_until(ws, "live_agent call slow_lookup")
    connection = server.connection()
    ws.transport.abort()  # no close handshake: the client just disappears

    async with asyncio.timeout(1.0):
        await connection.closed_event.wait()
    await server.log.wait_closed()
    assert await stored(server) == [
        "user text=look it up",
        "live_agent call slow_lookup",
        "live_agent response slow_lookup",  # answered "cancelled" so the history stays valid
    ]
    async with httpx.AsyncClient(base_url=server.base, timeout=TIMEOUT) as http:
        response = await http.post(
            "/apps/live/users/u/sessions/s:run",
            json={"newMessage": {"role": "user", "parts": [{"text": "again"}]}},
            headers={"Accept": "application/json"},
        )
    assert response.status_code == 200, response.text
    assert [describe(e) for e in response.json()["events"]][-1] == "live_agent text=later"


async def test_close_request_flushes_and_closes_with_1000(server: LiveServer) -> None:
    async with connect(server.url()) as ws:
        await ws.send(json.dumps({"close": True}))
        code, _, frames = await close_of(ws)

    assert code == 1000 and frames == []
    assert server.connection().closed


async def test_client_close_frame_ends_the_model_connection(server: LiveServer) -> None:
    server.model.responses.append("ready")
    async with connect(server.url()) as ws:
        await ws.send(text_turn("hi"))
        await frames_until(ws, "live_agent turn_complete")  # the model connection is open
        await ws.send(b"\x00\x00" * 320)
        await ws.close()
    connection = server.connection()

    async with asyncio.timeout(1.0):
        await connection.closed_event.wait()
    await server.log.wait_closed()
    assert await stored(server) == [
        "user text=hi",
        "live_agent output=ready",
        "live_agent turn_complete",
    ]


# --- bad input --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "invalid_request"),
        ("[1, 2]", "invalid_request"),
        ('{"bogus": 1}', "invalid_request"),
        ("{}", "invalid_request"),
        ('{"blob": {"data": "***not base64***"}}', "invalid_request"),
        (
            '{"content": {"role": "user", "parts": [{"functionCall": {"name": "get_time"}}]}}',
            "invalid_request",
        ),
        (b"\x00\x01\x02", "invalid_request"),  # odd length: not PCM16
        (b"", "invalid_request"),
        ("x" * (256 * 1024 + 1), "payload_too_large"),
        (b"\x00" * (256 * 1024 + 2), "payload_too_large"),
        ('{"content": {"role": "user", "parts": [{"text": "a\\u0000b"}]}}', "invalid_request"),
        ('{"content": {"role": "user", "parts": [{"text": "a\\ud800b"}]}}', "invalid_request"),
        ('{"blob": {"mimeType": "\\udfff", "data": "AAA="}}', "invalid_request"),
        (
            '{"content": {"parts": [{"executableCode": {"language": 1.5, "code": "x"}}]}}',
            "invalid_request",
        ),
        ('{"content": {"parts": [{"text": "x", "mediaProcessing": "NOPE"}]}}', "invalid_request"),
    ],
    ids=[
        "not-json",
        "not-object",
        "unknown-key",
        "empty",
        "bad-base64",
        "function-call",
        "odd-pcm",
        "empty-binary",
        "big-text",
        "big-binary",
        "nul",
        "surrogate",
        "surrogate-in-blob",
        "enum-number",
        "enum-unknown",
    ],
)
async def test_bad_frames_get_an_error_frame_and_reading_continues(
    server: LiveServer, frame: str | bytes, code: str
) -> None:
    server.model.responses.append("still here")

    async with connect(server.url(query="modalities=TEXT"), max_size=None) as ws:
        await ws.send(frame)
        error = await next_frame(ws)
        await ws.send(text_turn("hello"))
        frames = await frames_until(ws, "live_agent turn_complete")

    problem = error["error"]
    assert problem["code"] == code
    assert problem["status"] in (400, 413, 422)
    assert {"type", "title", "status", "detail", "code"} <= set(problem)
    if isinstance(frame, str) and frame.startswith('{"content": {"parts"'):
        assert problem["status"] == 422  # a wrong value names its field
        assert problem["errors"][0]["loc"][:3] == ["content", "parts", "0"]
    if isinstance(frame, str) and "\\u" in frame:
        assert problem["status"] == 422
        assert problem["errors"][0]["type"] == "string_forbidden_character"
    assert describe(frames[-2]) == "live_agent text=still here"


@pytest.mark.parametrize(
    ("app", "sid", "query", "code"),
    [
        ("nope", "s", "", 4404),
        ("live", "missing", "", 4404),
        ("live", "s", "modalities=VIDEO", 4400),
        ("live", "s", "modalities=", 4400),
        ("live", "s", "createSession=maybe", 4400),
    ],
    ids=["unknown-app", "unknown-session", "bad-modality", "empty-modality", "bad-bool"],
)
async def test_refused_connections_get_a_close_code(
    server: LiveServer, app: str, sid: str, query: str, code: int
) -> None:
    async with connect(server.url(sid, app=app, query=query)) as ws:
        received, reason, frames = await close_of(ws)

    assert received == code
    assert reason
    assert frames and frames[0]["error"]["status"] == (404 if code == 4404 else 400)


async def test_create_session_query_creates_a_missing_session(server: LiveServer) -> None:
    server.model.responses.append("welcome")

    async with connect(server.url("fresh", query="createSession=true&modalities=TEXT")) as ws:
        await ws.send(text_turn("hi"))
        await frames_until(ws, "live_agent turn_complete")

    await server.log.wait_closed()
    assert await stored(server, "fresh") == [
        "user text=hi",
        "live_agent text=welcome",
        "live_agent turn_complete",
    ]


async def test_second_live_connection_on_a_busy_session_is_refused(server: LiveServer) -> None:
    async with connect(server.url()) as first:
        await first.send(b"\x00\x00" * 320)
        async with connect(server.url()) as second:
            code, _, frames = await close_of(second)
        assert code == 1008
        assert frames[0]["error"]["code"] == "run_in_progress"


async def test_live_sessions_run_concurrently_with_http(server: LiveServer) -> None:
    server.model.responses.extend(["a"] * 5)
    async with contextlib.AsyncExitStack() as stack:
        sockets = [
            await stack.enter_async_context(
                connect(server.url(f"c{i}", query="createSession=true&modalities=TEXT"))
            )
            for i in range(5)
        ]
        for ws in sockets:
            await ws.send(text_turn("go"))
        async with httpx.AsyncClient(base_url=server.base) as http:
            health = await http.get("/healthz")
        results = await asyncio.gather(
            *(frames_until(ws, "live_agent turn_complete") for ws in sockets)
        )

    assert health.status_code == 200
    assert all(describe(frames[-2]) == "live_agent text=a" for frames in results)


async def test_a_client_slower_than_the_model_is_closed_with_1013(
    server: LiveServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from app.server.routes import live as live_route

    stalled = asyncio.Event()

    async def stalled_writer(self: Any) -> None:
        stalled.set()
        await asyncio.Event().wait()  # a client whose socket never drains

    monkeypatch.setattr(live_route, "OUTBOUND_FRAMES", 4)
    monkeypatch.setattr(live_route._LiveConnection, "_write", stalled_writer)
    server.model.responses.append(" ".join(["word"] * 20))  # 20 chunks + more: > 4 frames

    async with connect(server.url(query="modalities=TEXT")) as ws:
        await ws.send(text_turn("talk a lot"))
        code, reason, _ = await close_of(ws)

    assert stalled.is_set()
    assert code == 1013 and "too slow" in reason
    await server.log.wait_closed()
    assert (await stored(server))[0] == "user text=talk a lot"  # the session stays readable
