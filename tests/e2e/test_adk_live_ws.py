"""`WS /adk/run_live` over a real socket: the reference dev UI's frames, through the shared live
machinery (real uvicorn, the real `websockets` client, the scripted Gemini Live fake)."""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from websockets.asyncio.client import connect

from tests.e2e.test_live_ws import (
    LiveServer,
    close_of,
    describe,
    frames_until,
    next_frame,
    server,
    squash,
    stored,
)

pytestmark = pytest.mark.e2e

__all__ = ["server"]  # the fixture, shared with test_live_ws

# 0xfb 0xff 0xfe encodes as "-__-" in the URL-safe alphabet: only a decoder that accepts it
# hears these bytes.
CHUNK = bytes([0xFB, 0xFF, 0xFE, 0x00]) * 160  # 640 bytes, 20 ms of PCM16 at 16 kHz


def url(server: LiveServer, query: str) -> str:
    return f"{server.ws_base}/adk/run_live?{query}"


def blob(data: str, key: str = "mime_type") -> str:
    return json.dumps({"blob": {key: "audio/pcm;rate=16000", "data": data}})


async def test_dev_ui_audio_frames_in_snake_case_and_both_base64_alphabets(
    server: LiveServer,
) -> None:
    server.model.responses.append("Sunny and warm")
    url_safe = base64.urlsafe_b64encode(CHUNK).decode()
    assert "-" in url_safe and "_" in url_safe
    standard = base64.b64encode(CHUNK).decode()
    query = "app_name=live&user_id=u&session_id=s&modalities=AUDIO"

    async with connect(url(server, query)) as ws:
        await ws.send(json.dumps({"activity_start": {}}))
        await ws.send(blob(standard))  # what the dev UI sends (btoa)
        await ws.send(blob(url_safe, key="mimeType"))
        await ws.send(blob(url_safe.rstrip("=")))  # unpadded
        await ws.send(json.dumps({"activity_end": {}}))
        await ws.send(json.dumps({"audio_stream_end": True}))
        frames = await frames_until(ws, "live_agent turn_complete")
        await ws.send(json.dumps({"close": True}))
        code, _, rest = await close_of(ws)

    assert code == 1000 and rest == []
    connection = server.connection()
    assert connection.blob_bytes == 3 * len(CHUNK)
    assert (connection.activity_starts, connection.activity_ends) == (1, 1)
    lines = squash([describe(f) for f in frames])
    assert lines[0] == "user input~(1920 bytes heard)"
    assert lines[-2:] == ["live_agent output=Sunny and warm", "live_agent turn_complete"]
    audio = next(f for f in frames if describe(f) == "live_agent audio~")
    inline = audio["content"]["parts"][0]["inlineData"]  # camelCase events, as the reference
    assert inline["mimeType"] == "audio/pcm;rate=24000"
    assert len(base64.urlsafe_b64decode(inline["data"])) == 1920
    assert all("error" not in f for f in frames)


async def test_text_turn_and_the_session_is_held_while_connected(server: LiveServer) -> None:
    server.model.responses.append("Hello there")
    query = "app_name=live&user_id=u&session_id=s&modalities=TEXT"
    run = {
        "appName": "live",
        "userId": "u",
        "sessionId": "s",
        "newMessage": {"role": "user", "parts": [{"text": "meanwhile"}]},
    }

    async with connect(url(server, query)) as ws:
        await ws.send(json.dumps({"content": {"role": "user", "parts": [{"text": "hi"}]}}))
        frames = await frames_until(ws, "live_agent turn_complete")
        async with httpx.AsyncClient(base_url=server.base) as http:
            busy = await http.post("/adk/run_sse", json=run)
        assert busy.status_code == 409 and busy.json()["code"] == "run_in_progress"

    assert [describe(f) for f in frames][-2:] == [
        "live_agent text=Hello there",
        "live_agent turn_complete",
    ]
    await server.log.wait_closed()
    assert await stored(server) == [
        "user text=hi",
        "live_agent text=Hello there",
        "live_agent turn_complete",
    ]


async def test_a_bad_frame_gets_the_reference_error_frame_and_later_frames_still_count(
    server: LiveServer,
) -> None:
    server.model.responses.append("ok")
    query = "app_name=live&user_id=u&session_id=s&modalities=TEXT"

    async with connect(url(server, query)) as ws:
        await ws.send(json.dumps({"blob": {"mime_type": "audio/pcm", "data": "!!"}}))
        error = await next_frame(ws)
        await ws.send(json.dumps({"content": {"role": "user", "parts": [{"text": "hi"}]}}))
        frames = await frames_until(ws, "live_agent turn_complete")

    assert set(error) == {"error", "errorCode", "errorMessage"}
    assert error["errorCode"] == "invalid_request" and isinstance(error["error"], str)
    assert describe(frames[-2]) == "live_agent text=ok"


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("app_name=live&user_id=u&session_id=missing", 1002),
        ("app_name=nope&user_id=u&session_id=s", 1002),
        ("user_id=u&session_id=s", 1008),
        ("app_name=live&session_id=s", 1008),
        ("app_name=live&user_id=u&session_id=s&modalities=SMELL", 1008),
        ("app_name=live&user_id=u&session_id=s&proactive_audio=maybe", 1008),
    ],
)
async def test_refusals_close_with_the_reference_codes(
    server: LiveServer, query: str, code: int
) -> None:
    async with connect(url(server, query)) as ws:
        closed, reason, frames = await close_of(ws)
    assert closed == code and reason
    assert len(frames) == 1 and set(frames[0]) == {"error", "errorCode", "errorMessage"}
