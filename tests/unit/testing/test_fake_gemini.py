"""FakeGemini speaks the Gemini REST and Live wire protocol (checked with raw clients)."""

from __future__ import annotations

import base64
import json
import struct
import subprocess
import sys
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from google.genai import types
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

import app.testing
from app.testing import FakeGemini, FakeGeminiError, FakeLiveInterrupt, serve_fake_gemini
from app.testing.fake_gemini import ServedFakeGemini

KEY = {"x-goog-api-key": "test-key"}
GENERATE = "/v1beta/models/gemini-2.5-flash:generateContent"
STREAM = "/v1beta/models/gemini-2.5-flash:streamGenerateContent"
USER_HI = {"contents": [{"role": "user", "parts": [{"text": "hi there"}]}]}


def rest_client(fake: FakeGemini) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=fake), base_url="http://fake")


def sse_chunks(body: str) -> list[dict[str, Any]]:
    assert body.endswith("\r\n\r\n")
    frames = body.split("\r\n\r\n")[:-1]
    assert all(frame.startswith("data: ") for frame in frames)
    return [json.loads(frame.removeprefix("data: ")) for frame in frames]


# --- REST ---------------------------------------------------------------------------------


@pytest.mark.parametrize("version", ["v1", "v1beta", "v1alpha"])
async def test_generate_content_answers_text_like_gemini(version: str) -> None:
    fake = FakeGemini(["Hello from the fake"])
    async with rest_client(fake) as client:
        response = await client.post(
            f"/{version}/models/gemini-2.5-flash:generateContent", json=USER_HI, headers=KEY
        )
    assert response.status_code == 200
    body = response.json()
    candidate = body["candidates"][0]
    assert candidate["content"] == {"role": "model", "parts": [{"text": "Hello from the fake"}]}
    assert candidate["finishReason"] == "STOP"
    assert body["usageMetadata"] == {
        "promptTokenCount": 2,
        "candidatesTokenCount": 4,
        "totalTokenCount": 6,
    }
    assert body["modelVersion"] == "gemini-2.5-flash"
    assert body["responseId"]
    assert fake.requests == [USER_HI]
    assert fake.request_log[0].path == f"/{version}/models/gemini-2.5-flash:generateContent"
    assert fake.request_log[0].headers["x-goog-api-key"] == "test-key"


async def test_stream_splits_text_into_word_chunks_with_usage_on_the_last() -> None:
    fake = FakeGemini(["one two three"])
    async with rest_client(fake) as client:
        response = await client.post(STREAM, params={"alt": "sse"}, json=USER_HI, headers=KEY)
    assert response.headers["content-type"].startswith("text/event-stream")
    chunks = sse_chunks(response.text)
    texts = [c["candidates"][0]["content"]["parts"][0]["text"] for c in chunks]
    assert texts == ["one ", "two ", "three"]
    assert [("finishReason" in c["candidates"][0]) for c in chunks] == [False, False, True]
    assert [("usageMetadata" in c) for c in chunks] == [False, False, True]
    assert len({c["responseId"] for c in chunks}) == 1


async def test_stream_without_sse_answers_a_json_array() -> None:
    fake = FakeGemini(["a b"])
    async with rest_client(fake) as client:
        response = await client.post(STREAM, json=USER_HI, headers=KEY)
    assert [c["candidates"][0]["content"]["parts"][0]["text"] for c in response.json()] == [
        "a ",
        "b",
    ]


async def test_function_calls_get_ids_when_the_script_has_none() -> None:
    with_id = types.Part(function_call=types.FunctionCall(id="mine", name="g", args={}))
    fake = FakeGemini(
        [
            types.Part.from_function_call(name="get_weather", args={"city": "Paris"}),
            [types.Part(text="Let me check."), with_id],
        ]
    )
    async with rest_client(fake) as client:
        first = (await client.post(GENERATE, json=USER_HI, headers=KEY)).json()
        second = (await client.post(GENERATE, json=USER_HI, headers=KEY)).json()
    assert first["candidates"][0]["content"]["parts"] == [
        {"functionCall": {"id": "fc-1", "name": "get_weather", "args": {"city": "Paris"}}}
    ]
    assert second["candidates"][0]["content"]["parts"] == [
        {"text": "Let me check."},
        {"functionCall": {"id": "mine", "name": "g", "args": {}}},
    ]


async def test_dict_items_are_sent_verbatim() -> None:
    raw = {"promptFeedback": {"blockReason": "SAFETY"}, "responseId": "r"}
    fake = FakeGemini([raw, raw])
    async with rest_client(fake) as client:
        plain = await client.post(GENERATE, json=USER_HI, headers=KEY)
        streamed = await client.post(STREAM, params={"alt": "sse"}, json=USER_HI, headers=KEY)
    assert plain.json() == raw
    assert sse_chunks(streamed.text) == [raw]


@pytest.mark.parametrize("path", [GENERATE, STREAM + "?alt=sse"])
async def test_scripted_error_answers_the_google_error_body(path: str) -> None:
    fake = FakeGemini([FakeGeminiError(status=429, message="Quota exceeded.")])
    async with rest_client(fake) as client:
        response = await client.post(path, json=USER_HI, headers=KEY)
    assert response.status_code == 429
    assert response.json() == {
        "error": {"code": 429, "message": "Quota exceeded.", "status": "RESOURCE_EXHAUSTED"}
    }


async def test_exhausted_script_answers_500_saying_so() -> None:
    fake = FakeGemini([])
    async with rest_client(fake) as client:
        response = await client.post(GENERATE, json=USER_HI, headers=KEY)
    assert response.status_code == 500
    assert response.json()["error"]["status"] == "INTERNAL"
    assert "exhausted" in response.json()["error"]["message"]


async def test_missing_api_key_is_rejected_without_consuming_the_script() -> None:
    fake = FakeGemini(["kept"])
    async with rest_client(fake) as client:
        response = await client.post(GENERATE, json=USER_HI)
    assert response.status_code == 401
    assert response.json()["error"]["status"] == "UNAUTHENTICATED"
    assert fake.remaining == 1


async def test_unknown_method_and_bad_json_answer_google_errors() -> None:
    fake = FakeGemini(["kept"])
    async with rest_client(fake) as client:
        unknown = await client.post(
            "/v1/models/gemini-2.5-flash:countTokens", json=USER_HI, headers=KEY
        )
        bad = await client.post(GENERATE, content=b"{not json", headers=KEY)
    assert unknown.status_code == 404
    assert bad.status_code == 400
    assert bad.json()["error"]["status"] == "INVALID_ARGUMENT"
    assert fake.remaining == 1


def test_testing_package_exports_the_fake() -> None:
    exported = {"FakeGemini", "FakeGeminiError", "FakeLiveInterrupt", "serve_fake_gemini"}
    assert exported <= set(app.testing.__all__)


def test_app_testing_imports_without_trustme() -> None:
    code = "import sys; sys.modules['trustme'] = None; import app.testing"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=50, check=False
    )
    assert result.returncode == 0, result.stderr


# --- Live ---------------------------------------------------------------------------------


@pytest.fixture
async def served() -> AsyncIterator[ServedFakeGemini]:
    async with serve_fake_gemini(FakeGemini()) as served:
        yield served


def live_url(served: ServedFakeGemini, version: str = "v1beta") -> str:
    ws_base = served.base_url.replace("https://", "wss://")
    return (
        f"{ws_base}/ws/google.ai.generativelanguage.{version}.GenerativeService.BidiGenerateContent"
    )


async def open_live(
    served: ServedFakeGemini, setup: dict[str, Any], version: str = "v1beta"
) -> ClientConnection:
    ws = await connect(live_url(served, version), ssl=served.ssl_context, additional_headers=KEY)
    await ws.send(json.dumps({"setup": {"model": "models/gemini-live", **setup}}))
    assert json.loads(await ws.recv()) == {"setupComplete": {}}
    return ws


async def read_until(ws: ClientConnection, key: str) -> list[dict[str, Any]]:
    """Read server messages up to and including the first whose serverContent has `key`."""
    messages = []
    while True:
        message = json.loads(await ws.recv())
        messages.append(message)
        if key in message.get("serverContent", {}):
            return messages


def user_turn(text: str, *, camel: bool = False) -> str:
    key = "clientContent" if camel else "client_content"
    turn = {"turns": [{"role": "user", "parts": [{"text": text}]}], "turnComplete": True}
    return json.dumps({key: turn})


@pytest.mark.parametrize("camel", [False, True])
async def test_live_text_turn_streams_words_then_completes(
    served: ServedFakeGemini, camel: bool
) -> None:
    served.fake.add("hello back")
    ws = await open_live(served, {"generationConfig": {"responseModalities": ["TEXT"]}})
    async with ws:
        await ws.send(user_turn("hello", camel=camel))
        messages = await read_until(ws, "turnComplete")
    texts = [
        m["serverContent"]["modelTurn"]["parts"][0]["text"]
        for m in messages
        if "modelTurn" in m["serverContent"]
    ]
    assert texts == ["hello ", "back"]
    assert messages[-1]["usageMetadata"]["responseTokenCount"] == 2
    assert served.fake.live_setups[0]["model"] == "models/gemini-live"
    assert len(served.fake.live_frames) == 2


async def test_live_audio_turn_transcribes_and_answers_with_pcm(served: ServedFakeGemini) -> None:
    served.fake.add("beep")
    setup = {"generation_config": {"response_modalities": ["AUDIO"]}}
    ws = await open_live(served, setup)
    chunk = base64.b64encode(b"\x01\x00" * 1600).decode()
    async with ws:
        for _ in range(3):
            audio = {"data": chunk, "mime_type": "audio/pcm;rate=16000"}
            await ws.send(json.dumps({"realtime_input": {"audio": audio}}))
        await ws.send(json.dumps({"realtimeInput": {"audioStreamEnd": True}}).encode())
        messages = await read_until(ws, "turnComplete")
    contents = [m["serverContent"] for m in messages]
    assert contents[0] == {"inputTranscription": {"text": "(9600 bytes heard)"}}
    blobs = [c["modelTurn"]["parts"][0]["inlineData"] for c in contents if "modelTurn" in c]
    assert len(blobs) == 3
    assert {b["mimeType"] for b in blobs} == {"audio/pcm;rate=24000"}
    pcm = base64.b64decode(blobs[0]["data"])
    samples = struct.unpack(f"<{len(pcm) // 2}h", pcm)
    assert len(pcm) == 4800
    assert max(samples) > 1000  # a real tone, not silence
    assert {"outputTranscription": {"text": "beep"}} in contents
    assert contents[-2:] == [{"generationComplete": True}, {"turnComplete": True}]


async def test_live_counts_url_safe_base64_audio_as_the_sdk_sends_it(
    served: ServedFakeGemini,
) -> None:
    served.fake.add("ok")
    ws = await open_live(served, {"generationConfig": {"responseModalities": ["AUDIO"]}})
    async with ws:
        audio = {
            "data": base64.urlsafe_b64encode(b"\xff\xfe\xfb").decode(),
            "mimeType": "audio/pcm",
        }
        await ws.send(json.dumps({"realtime_input": {"audio": audio}}))
        await ws.send(json.dumps({"realtime_input": {"audioStreamEnd": True}}))
        messages = await read_until(ws, "inputTranscription")
    assert messages[-1]["serverContent"]["inputTranscription"]["text"] == "(3 bytes heard)"


async def test_live_realtime_text_is_a_turn_and_non_audio_media_is_not_heard(
    served: ServedFakeGemini,
) -> None:
    served.fake.add("seen")
    ws = await open_live(served, {"generationConfig": {"responseModalities": ["AUDIO"]}})
    async with ws:
        image = {"data": base64.b64encode(b"jpeg").decode(), "mimeType": "image/jpeg"}
        await ws.send(json.dumps({"realtime_input": {"mediaChunks": [image]}}))
        await ws.send(json.dumps({"realtime_input": {"audioStreamEnd": True}}))  # nothing heard
        await ws.send(json.dumps({"realtimeInput": {"text": "what is this?"}}))
        messages = await read_until(ws, "turnComplete")
    assert not any("inputTranscription" in m["serverContent"] for m in messages)
    assert {"serverContent": {"outputTranscription": {"text": "seen"}}} in messages


async def test_live_activity_end_after_audio_ends_the_turn(served: ServedFakeGemini) -> None:
    served.fake.add("ok")
    ws = await open_live(served, {"generationConfig": {"responseModalities": ["TEXT"]}})
    async with ws:
        await ws.send(json.dumps({"realtime_input": {"activityStart": {}}}))
        audio = {"data": base64.b64encode(b"\0\0").decode(), "mimeType": "audio/pcm"}
        await ws.send(json.dumps({"realtime_input": {"audio": audio}}))
        await ws.send(json.dumps({"realtime_input": {"activityEnd": {}}}))
        messages = await read_until(ws, "turnComplete")
    assert messages[0] == {
        "serverContent": {"modelTurn": {"role": "model", "parts": [{"text": "ok"}]}}
    }


async def test_live_tool_call_waits_for_the_tool_response(served: ServedFakeGemini) -> None:
    served.fake.add(types.Part.from_function_call(name="get_time", args={"tz": "UTC"}), "noon")
    ws = await open_live(served, {"generationConfig": {"responseModalities": ["TEXT"]}})
    async with ws:
        await ws.send(user_turn("time?"))
        call = json.loads(await ws.recv())
        assert call == {
            "toolCall": {
                "functionCalls": [{"id": "fc-1", "name": "get_time", "args": {"tz": "UTC"}}]
            }
        }
        response = {"id": "fc-1", "name": "get_time", "response": {"time": "12:00"}}
        await ws.send(json.dumps({"tool_response": {"functionResponses": [response]}}))
        messages = await read_until(ws, "turnComplete")
    assert messages[0]["serverContent"]["modelTurn"]["parts"] == [{"text": "noon"}]
    assert served.fake.remaining == 0


async def test_live_interrupt_sends_part_of_the_answer_then_interrupted(
    served: ServedFakeGemini,
) -> None:
    served.fake.add(FakeLiveInterrupt("one two three four"), "after")
    ws = await open_live(served, {"generationConfig": {"responseModalities": ["TEXT"]}})
    async with ws:
        await ws.send(user_turn("go"))
        messages = await read_until(ws, "interrupted")
        await ws.send(user_turn("again"))
        after = await read_until(ws, "turnComplete")
    texts = [m["serverContent"]["modelTurn"]["parts"][0]["text"] for m in messages[:-1]]
    assert texts == ["one ", "two "]
    assert messages[-1] == {"serverContent": {"interrupted": True}}
    assert after[0]["serverContent"]["modelTurn"]["parts"] == [{"text": "after"}]


async def test_live_resumption_updates_go_away_and_handle_in_setup(
    served: ServedFakeGemini,
) -> None:
    served.fake.add("first", "second")
    setup = {"generationConfig": {"responseModalities": ["TEXT"]}, "sessionResumption": {}}
    ws = await open_live(served, setup)
    async with ws:
        await ws.send(user_turn("one"))
        await read_until(ws, "turnComplete")
        assert json.loads(await ws.recv()) == {
            "sessionResumptionUpdate": {"newHandle": "handle-1", "resumable": True}
        }
        served.fake.go_away_after_turn("5s")
        await ws.send(user_turn("two"))
        await read_until(ws, "turnComplete")
        assert json.loads(await ws.recv())["sessionResumptionUpdate"]["newHandle"] == "handle-2"
        assert json.loads(await ws.recv()) == {"goAway": {"timeLeft": "5s"}}
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1000

    resumed = {**setup, "session_resumption": {"handle": "handle-2"}}
    del resumed["sessionResumption"]
    ws = await open_live(served, resumed)
    await ws.close()
    assert served.fake.resumption_handles == [None, "handle-2"]


async def test_live_scripted_error_closes_with_its_code(served: ServedFakeGemini) -> None:
    served.fake.add(FakeGeminiError(status=503, message="overloaded", close_code=1013))
    ws = await open_live(served, {})
    async with ws:
        await ws.send(user_turn("hi"))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None
    assert (closed.value.rcvd.code, closed.value.rcvd.reason) == (1013, "overloaded")


async def test_live_requires_an_api_key(served: ServedFakeGemini) -> None:
    async with connect(live_url(served), ssl=served.ssl_context) as ws:
        await ws.send(json.dumps({"setup": {"model": "models/m"}}))
        with pytest.raises(ConnectionClosed) as closed:
            await ws.recv()
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


async def test_live_dict_items_are_sent_verbatim(served: ServedFakeGemini) -> None:
    served.fake.add({"serverContent": {"turnComplete": True, "waitingForInput": True}})
    ws = await open_live(served, {})
    async with ws:
        await ws.send(user_turn("hi"))
        assert json.loads(await ws.recv()) == {
            "serverContent": {"turnComplete": True, "waitingForInput": True}
        }
