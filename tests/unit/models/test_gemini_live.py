"""Gemini live sessions over real TLS WebSockets against FakeGemini."""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import aclosing

import pytest
from google.genai import types

from app.errors import ModelError
from app.events.llm_response import LlmResponse
from app.models import BaseLlmConnection, Gemini, LlmRequest
from app.testing import FakeGemini, FakeGeminiError, FakeLiveInterrupt, serve_fake_gemini
from app.testing.fake_gemini import ServedFakeGemini

TEXT = [types.Modality.TEXT]
AUDIO = [types.Modality.AUDIO]
PCM_IN = "audio/pcm;rate=16000"


def user(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=text)])


def live_request(modalities: list[types.Modality] = TEXT, **live: object) -> LlmRequest:
    config = types.LiveConnectConfig.model_validate({"response_modalities": modalities, **live})
    return LlmRequest(live_connect_config=config)


def describe(response: LlmResponse) -> str:
    """One line per response: `~` marks a partial, `=` a final one."""
    mark = "~" if response.partial else "="
    if response.error_code:
        return f"error {response.error_code}: {response.error_message}"
    if response.turn_complete:
        return "turn_complete"
    if response.interrupted:
        return "interrupted"
    if response.input_transcription:
        return f"input{mark}{response.input_transcription.text}"
    if response.output_transcription:
        return f"output{mark}{response.output_transcription.text}"
    if response.custom_metadata:
        return f"meta {response.custom_metadata}"
    assert response.content is not None and response.content.parts
    part = response.content.parts[0]
    if part.function_call:
        return f"call {part.function_call.name}"
    if part.inline_data:
        return f"audio{mark}{part.inline_data.mime_type}"
    return f"text{mark}{''.join(p.text or '' for p in response.content.parts)}"


async def receive_until(
    responses: AsyncIterator[LlmResponse], stop: Callable[[LlmResponse], bool]
) -> list[LlmResponse]:
    received = []
    async for response in responses:
        received.append(response)
        if stop(response):
            return received
    raise AssertionError(f"receive() ended early after {[describe(r) for r in received]}")


def mime_type(blob: dict[str, str]) -> str | None:
    """Read a blob's MIME type from a recorded frame (the SDK sends it snake_case)."""
    return blob.get("mime_type", blob.get("mimeType"))


def turn_complete(response: LlmResponse) -> bool:
    return bool(response.turn_complete)


@pytest.fixture(autouse=True)
def gemini_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GOOGLE_API_KEY", "test-key")
    for name in ("GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_GENAI_USE_VERTEXAI"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
async def served() -> AsyncIterator[ServedFakeGemini]:
    async with serve_fake_gemini(FakeGemini()) as served:
        yield served


@pytest.fixture
def fake(served: ServedFakeGemini) -> FakeGemini:
    return served.fake


@pytest.fixture
async def llm(served: ServedFakeGemini) -> AsyncIterator[Gemini]:
    gemini = Gemini(model="gemini-live-2.5-flash-preview", http_options=served.http_options())
    yield gemini
    await gemini.aclose()


async def test_text_turn_streams_then_aggregates(fake: FakeGemini, llm: Gemini) -> None:
    fake.add("You said hello")
    declaration = types.FunctionDeclaration(name="get_time", description="Time now.")
    llm_request = live_request()
    llm_request.config = types.GenerateContentConfig(
        system_instruction="Be nice.",
        tools=[types.Tool(function_declarations=[declaration])],
    )
    async with llm.connect(llm_request) as connection:
        await connection.send_content(user("hello"))
        async with aclosing(connection.receive()) as responses:
            received = await receive_until(responses, turn_complete)

    assert [describe(r) for r in received] == [
        "text~You ",
        "text~said ",
        "text~hello",
        "text=You said hello",
        "turn_complete",
    ]
    usage = received[-1].usage_metadata
    assert usage is not None
    assert (usage.prompt_token_count, usage.candidates_token_count) == (1, 3)
    setup = fake.live_setups[0]
    assert setup["model"] == "models/gemini-live-2.5-flash-preview"
    assert setup["systemInstruction"]["parts"] == [{"text": "Be nice."}]
    assert setup["tools"][0]["functionDeclarations"][0]["name"] == "get_time"
    assert llm_request.live_connect_config.system_instruction is None  # not mutated


async def test_audio_in_gets_transcriptions_and_audio_out(fake: FakeGemini, llm: Gemini) -> None:
    fake.add("beep boop")
    async with llm.connect(live_request(AUDIO)) as connection:
        for _ in range(3):
            await connection.send_realtime(types.Blob(data=b"\x01\x00" * 1600, mime_type=PCM_IN))
        await connection.send_audio_stream_end()
        async with aclosing(connection.receive()) as responses:
            received = await receive_until(responses, turn_complete)

    assert [describe(r) for r in received] == [
        "input~(9600 bytes heard)",
        "input=(9600 bytes heard)",
        "audio~audio/pcm;rate=24000",
        "audio~audio/pcm;rate=24000",
        "audio~audio/pcm;rate=24000",
        "output~beep boop",
        "output=beep boop",
        "turn_complete",
    ]
    assert received[1].input_transcription == types.Transcription(
        text="(9600 bytes heard)", finished=True
    )
    audio = received[2].content.parts[0].inline_data  # type: ignore[union-attr]
    assert audio is not None and audio.data is not None and len(audio.data) == 4800
    realtime = [f["realtime_input"] for f in fake.live_frames if "realtime_input" in f]
    assert [mime_type(r["audio"]) for r in realtime if "audio" in r] == [PCM_IN] * 3
    assert realtime[-1] == {"audioStreamEnd": True}


async def test_manual_activity_signals_end_a_turn(fake: FakeGemini, llm: Gemini) -> None:
    fake.add("heard you")
    async with llm.connect(live_request()) as connection:
        await connection.send_activity_start()
        await connection.send_realtime(types.Blob(data=b"\0\0" * 800, mime_type=PCM_IN))
        await connection.send_activity_end()
        async with aclosing(connection.receive()) as responses:
            received = await receive_until(responses, turn_complete)
    assert "text=heard you" in [describe(r) for r in received]
    realtime = [f["realtime_input"] for f in fake.live_frames if "realtime_input" in f]
    assert "activityStart" in realtime[0] and "activityEnd" in realtime[-1]


async def test_tool_call_round_trip(fake: FakeGemini, llm: Gemini) -> None:
    fake.add(types.Part.from_function_call(name="get_time", args={"tz": "UTC"}), "It is noon.")
    async with llm.connect(live_request()) as connection:
        await connection.send_content(user("what time is it?"))
        async with aclosing(connection.receive()) as responses:
            [call_response] = await receive_until(responses, lambda r: r.content is not None)
            assert not call_response.partial
            assert call_response.content is not None and call_response.content.parts
            call = call_response.content.parts[0].function_call
            assert call is not None and (call.id, call.name) == ("fc-1", "get_time")
            assert call.args == {"tz": "UTC"}

            reply = types.FunctionResponse(id=call.id, name=call.name, response={"time": "12:00"})
            await connection.send_content(
                types.Content(role="user", parts=[types.Part(function_response=reply)])
            )
            received = await receive_until(responses, turn_complete)

    assert [describe(r) for r in received][-2:] == ["text=It is noon.", "turn_complete"]
    [tool_response] = [f["tool_response"] for f in fake.live_frames if "tool_response" in f]
    assert tool_response["functionResponses"] == [
        {"id": "fc-1", "name": "get_time", "response": {"time": "12:00"}}
    ]


async def test_function_response_without_id_is_refused(llm: Gemini) -> None:
    reply = types.FunctionResponse(name="get_time", response={"time": "12:00"})
    async with llm.connect(live_request()) as connection:
        with pytest.raises(ValueError):
            await connection.send_content(
                types.Content(role="user", parts=[types.Part(function_response=reply)])
            )


async def test_interruption_keeps_what_was_said(fake: FakeGemini, llm: Gemini) -> None:
    fake.add(FakeLiveInterrupt("one two three four"))
    async with llm.connect(live_request()) as connection:
        await connection.send_content(user("talk"))
        async with aclosing(connection.receive()) as responses:
            received = await receive_until(responses, lambda r: bool(r.interrupted))
    assert [describe(r) for r in received] == [
        "text~one ",
        "text~two ",
        "text=one two ",
        "interrupted",
    ]


async def test_resumption_handle_and_go_away_then_resume(fake: FakeGemini, llm: Gemini) -> None:
    fake.add("first", "second")
    fake.go_away_after_turn()
    llm_request = live_request(session_resumption=types.SessionResumptionConfig())
    async with llm.connect(llm_request) as connection:
        await connection.send_content(user("one"))
        async with aclosing(connection.receive()) as responses:
            received = [r async for r in responses]  # ends: the server closed (1000)

    assert [describe(r) for r in received][-3:] == [
        "turn_complete",
        "meta {'live_session_resumption_handle': 'handle-1'}",
        "meta {'live_go_away': {'time_left': '10s'}}",
    ]

    llm_request.live_connect_config.session_resumption = types.SessionResumptionConfig(
        handle="handle-1"
    )
    async with llm.connect(llm_request) as connection:
        await connection.send_content(user("two"))
        async with aclosing(connection.receive()) as responses:
            received = await receive_until(responses, turn_complete)
    assert "text=second" in [describe(r) for r in received]
    assert fake.resumption_handles == [None, "handle-1"]


async def test_send_history_completes_the_turn_only_after_a_user_turn(
    fake: FakeGemini, llm: Gemini
) -> None:
    fake.add("Hello again, Ann.")
    model_turn = types.Content(role="model", parts=[types.Part(text="Hi Ann.")])
    audio_only = types.Content(
        role="user", parts=[types.Part(inline_data=types.Blob(data=b"\0", mime_type=PCM_IN))]
    )
    async with llm.connect(live_request()) as connection:
        await connection.send_history([])
        await connection.send_history([audio_only])
        await connection.send_history([user("I am Ann."), model_turn])
        await connection.send_history([user("I am Ann."), model_turn, user("Remember me?")])
        async with aclosing(connection.receive()) as responses:
            received = await receive_until(responses, turn_complete)

    contents = [f["client_content"] for f in fake.live_frames if "client_content" in f]
    assert len(contents) == 2  # nothing was sent for the empty and the audio-only history
    assert contents[0]["turnComplete"] is False
    assert [t["role"] for t in contents[0]["turns"]] == ["user", "model"]
    assert contents[1]["turnComplete"] is True
    assert "text=Hello again, Ann." in [describe(r) for r in received]


async def test_non_audio_media_is_sent_as_media(fake: FakeGemini, llm: Gemini) -> None:
    async with llm.connect(live_request()) as connection:
        await connection.send_realtime(types.Blob(data=b"\xff\xd8", mime_type="image/jpeg"))
        await connection.close()
        async with aclosing(connection.receive()) as responses:
            assert [r async for r in responses] == []
    [realtime] = [f["realtime_input"] for f in fake.live_frames if "realtime_input" in f]
    assert mime_type(realtime["mediaChunks"][0]) == "image/jpeg"


async def test_server_error_close_becomes_an_error_response(fake: FakeGemini, llm: Gemini) -> None:
    fake.add("partial answer first", FakeGeminiError(message="model overloaded"))
    async with llm.connect(live_request()) as connection:
        await connection.send_content(user("one"))
        await connection.send_content(user("two"))
        async with aclosing(connection.receive()) as responses:
            received = [r async for r in responses]
    assert [describe(r) for r in received][-1] == "error 1011: model overloaded"


async def test_connect_failure_raises_model_error() -> None:
    with socket.socket() as sock:  # bound, never listening: connecting is refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        llm = Gemini(http_options=types.HttpOptions(base_url=f"https://127.0.0.1:{port}"))
        with pytest.raises(ModelError, match="UNAVAILABLE"):
            async with llm.connect(live_request()):
                pass


async def test_connection_is_a_base_llm_connection(llm: Gemini) -> None:
    async with llm.connect(live_request()) as connection:
        assert isinstance(connection, BaseLlmConnection)
