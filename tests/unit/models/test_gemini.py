"""Gemini drives the real google-genai client against FakeGemini (REST)."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from google.genai import types

from app.agents import Agent
from app.events.llm_response import LlmResponse
from app.models import Gemini, GeminiCredentialsError, LLMRegistry, LlmRequest
from app.runners import InMemoryRunner
from app.testing import FakeGemini, FakeGeminiError, serve_fake_gemini
from app.testing.fake_gemini import ServedFakeGemini

WEATHER = types.FunctionDeclaration(
    name="get_weather",
    description="Current weather in a city.",
    parameters_json_schema={"type": "object", "properties": {"city": {"type": "string"}}},
)


def user(text: str) -> types.Content:
    return types.Content(role="user", parts=[types.Part(text=text)])


def request(*contents: types.Content, **config: object) -> LlmRequest:
    return LlmRequest(
        contents=list(contents), config=types.GenerateContentConfig.model_validate(config)
    )


async def collect(llm: Gemini, llm_request: LlmRequest, stream: bool = False) -> list[LlmResponse]:
    return [r async for r in llm.generate_content_async(llm_request, stream=stream)]


@pytest.fixture(autouse=True)
def gemini_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """A test key and no ambient Gemini/Vertex settings from the developer's shell."""
    monkeypatch.setenv("GOOGLE_API_KEY", "test-key")
    for name in ("GEMINI_API_KEY", "GOOGLE_GEMINI_BASE_URL", "GOOGLE_GENAI_USE_VERTEXAI"):
        monkeypatch.delenv(name, raising=False)


@pytest.fixture
def fake() -> FakeGemini:
    return FakeGemini()


@pytest.fixture
async def llm(fake: FakeGemini) -> AsyncIterator[Gemini]:
    gemini = Gemini(http_options=fake.http_options())
    yield gemini
    await gemini.aclose()


@pytest.fixture
async def served(fake: FakeGemini) -> AsyncIterator[ServedFakeGemini]:
    async with serve_fake_gemini(fake) as served:
        yield served


async def test_text_reply_becomes_one_response(fake: FakeGemini, llm: Gemini) -> None:
    fake.add("Hello there!")
    [response] = await collect(llm, request(user("hi")))
    assert response.content is not None and response.content.role == "model"
    assert response.content.parts == [types.Part(text="Hello there!")]
    assert response.finish_reason == types.FinishReason.STOP
    assert response.usage_metadata is not None
    assert response.usage_metadata.total_token_count == 3
    assert response.model_version == "gemini-2.5-flash"
    assert not response.partial and response.error_code is None
    assert fake.request_log[0].path == "/v1/models/gemini-2.5-flash:generateContent"
    assert fake.requests[0]["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]


async def test_request_model_overrides_the_default(fake: FakeGemini, llm: Gemini) -> None:
    fake.add("ok")
    llm_request = request(user("hi"))
    llm_request.model = "gemini-2.5-pro"
    await collect(llm, llm_request)
    assert fake.request_log[0].path.endswith("/models/gemini-2.5-pro:generateContent")


async def test_stream_yields_partials_then_one_aggregate_over_real_sse(
    fake: FakeGemini, served: ServedFakeGemini
) -> None:
    fake.add("The quick brown fox")
    llm = Gemini(http_options=served.http_options())
    try:
        responses = await collect(llm, request(user("go")), stream=True)
    finally:
        await llm.aclose()
    *partials, final = responses
    assert [p.partial for p in partials] == [True] * 4
    chunks = [p.content.parts[0].text for p in partials if p.content and p.content.parts]
    assert chunks == ["The ", "quick ", "brown ", "fox"]
    assert not final.partial
    assert final.content is not None
    assert final.content.parts == [types.Part(text="The quick brown fox")]
    assert final.finish_reason == types.FinishReason.STOP
    assert final.usage_metadata is not None
    assert final.usage_metadata.candidates_token_count == 4
    assert "alt=sse" in fake.request_log[0].query


async def test_stream_aggregates_text_and_function_calls_without_call_partials(
    fake: FakeGemini, llm: Gemini
) -> None:
    call = types.Part.from_function_call(name="get_weather", args={"city": "Paris"})
    fake.add([types.Part(text="Checking now."), call])
    responses = await collect(llm, request(user("weather?")), stream=True)
    *partials, final = responses
    assert all(p.partial for p in partials)
    assert all(p.content and p.content.parts and p.content.parts[0].text for p in partials)
    assert final.content is not None and final.content.parts is not None
    assert final.content.parts[0] == types.Part(text="Checking now.")
    function_call = final.content.parts[1].function_call
    assert function_call is not None
    assert (function_call.id, function_call.name) == ("fc-1", "get_weather")


async def test_stream_keeps_thought_text_apart(fake: FakeGemini, llm: Gemini) -> None:
    fake.add([types.Part(text="hmm let me think", thought=True), types.Part(text="Answer")])
    *_, final = await collect(llm, request(user("q")), stream=True)
    assert final.content is not None
    assert final.content.parts == [
        types.Part(text="hmm let me think", thought=True),
        types.Part(text="Answer"),
    ]


async def test_function_call_round_trip(fake: FakeGemini, llm: Gemini) -> None:
    fake.add(types.Part.from_function_call(name="get_weather", args={"city": "Paris"}))
    fake.add("It is 21 degrees in Paris.")
    tools = [types.Tool(function_declarations=[WEATHER])]
    first_request = request(user("weather in Paris?"), tools=tools)

    [call_response] = await collect(llm, first_request)

    assert call_response.content is not None and call_response.content.parts
    call = call_response.content.parts[0].function_call
    assert call is not None
    assert (call.id, call.name, call.args) == ("fc-1", "get_weather", {"city": "Paris"})
    declarations = fake.requests[0]["tools"][0]["functionDeclarations"]
    assert declarations[0]["name"] == "get_weather"
    assert declarations[0]["description"] == "Current weather in a city."

    reply = types.Part(
        function_response=types.FunctionResponse(id=call.id, name=call.name, response={"temp": 21})
    )
    follow_up = request(
        user("weather in Paris?"),
        call_response.content,
        types.Content(role="user", parts=[reply]),
        tools=tools,
    )
    [answer] = await collect(llm, follow_up)

    assert answer.content is not None and answer.content.parts
    assert answer.content.parts[0].text == "It is 21 degrees in Paris."
    sent = fake.requests[1]["contents"]
    assert sent[1]["parts"][0]["functionCall"]["id"] == "fc-1"
    assert sent[2]["parts"][0]["functionResponse"] == {
        "id": "fc-1",
        "name": "get_weather",
        "response": {"temp": 21},
    }


async def test_system_instruction_and_generation_config_are_forwarded(
    fake: FakeGemini, llm: Gemini
) -> None:
    fake.add("ok")
    llm_request = request(
        user("hi"), system_instruction="Be brief.", temperature=0.2, max_output_tokens=64
    )
    await collect(llm, llm_request)
    body = fake.requests[0]
    assert body["systemInstruction"]["parts"] == [{"text": "Be brief."}]
    assert body["generationConfig"]["temperature"] == 0.2
    assert body["generationConfig"]["maxOutputTokens"] == 64


async def test_automatic_function_calling_is_disabled(fake: FakeGemini, llm: Gemini) -> None:
    calls: list[str] = []

    def get_weather(city: str) -> dict[str, int]:
        """Current weather in a city."""
        calls.append(city)
        return {"temp": 21}

    fake.add(types.Part.from_function_call(name="get_weather", args={"city": "Paris"}))
    llm_request = request(user("weather?"), tools=[get_weather])
    [response] = await collect(llm, llm_request)

    assert calls == []  # the SDK did not run the Python tool on its own
    assert len(fake.requests) == 1
    assert response.content is not None and response.content.parts
    assert response.content.parts[0].function_call is not None
    assert llm_request.config.automatic_function_calling is None  # caller's config untouched


@pytest.mark.parametrize("stream", [False, True])
async def test_api_error_becomes_an_error_response(
    fake: FakeGemini, llm: Gemini, stream: bool
) -> None:
    fake.add(FakeGeminiError(status=429, message="Quota exceeded for the day."))
    [response] = await collect(llm, request(user("hi")), stream=stream)
    assert response.error_code == "RESOURCE_EXHAUSTED"
    assert response.error_message == "Quota exceeded for the day."
    assert response.content is None


async def test_blocked_prompt_becomes_an_error_response(fake: FakeGemini, llm: Gemini) -> None:
    fake.add({"promptFeedback": {"blockReason": "SAFETY"}, "modelVersion": "m"})
    [response] = await collect(llm, request(user("hi")))
    assert response.error_code == "SAFETY"


async def test_retry_options_retry_a_429(fake: FakeGemini) -> None:
    fake.add(FakeGeminiError(status=429, message="slow down"), "finally")
    retry = types.HttpRetryOptions(attempts=2, initial_delay=0, max_delay=0, jitter=0)
    llm = Gemini(http_options=fake.http_options(), retry_options=retry)
    [response] = await collect(llm, request(user("hi")))
    assert response.content is not None and response.content.parts
    assert response.content.parts[0].text == "finally"
    assert len(fake.requests) == 2


@pytest.mark.parametrize("stream", [False, True])
async def test_connection_refused_becomes_unavailable(stream: bool) -> None:
    with socket.socket() as sock:  # bound, never listening: connecting is refused
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        llm = Gemini(http_options=types.HttpOptions(base_url=f"http://127.0.0.1:{port}"))
        [response] = await collect(llm, request(user("hi")), stream=stream)
        await llm.aclose()
    assert response.error_code == "UNAVAILABLE"
    assert response.error_message


@pytest.mark.parametrize("stream", [False, True])
async def test_cancelling_a_call_in_flight_propagates(stream: bool) -> None:
    connected = asyncio.Event()

    async def hang(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        connected.set()
        await reader.read()  # until the client goes away; never answers
        writer.close()

    server = await asyncio.start_server(hang, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    llm = Gemini(http_options=types.HttpOptions(base_url=f"http://127.0.0.1:{port}"))
    async with server:
        task = asyncio.create_task(collect(llm, request(user("hi")), stream=stream))
        await connected.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await llm.aclose()


async def test_environment_picks_key_and_base_url(
    fake: FakeGemini, served: ServedFakeGemini, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", served.base_url)
    monkeypatch.setenv("GOOGLE_API_KEY", "key-from-env")
    fake.add("from env")
    # Only the TLS trust is passed in; base URL and key come from the environment.
    llm = Gemini(http_options=types.HttpOptions(async_client_args=served.client_args()))
    try:
        [response] = await collect(llm, request(user("hi")))
    finally:
        await llm.aclose()
    assert response.content is not None and response.content.parts
    assert response.content.parts[0].text == "from env"
    headers = fake.request_log[0].headers
    assert headers["x-goog-api-key"] == "key-from-env"
    assert "agent-service/" in headers["x-goog-api-client"]


def test_client_is_created_once() -> None:
    llm = Gemini()
    assert llm.api_client is llm.api_client


@pytest.mark.parametrize(
    "model",
    [
        "gemini-2.5-flash",
        "gemini-live-2.5-flash-preview",
        "model-optimizer-exp-04-09",
        "projects/p/locations/us-central1/endpoints/123",
        "projects/p/locations/us-central1/publishers/google/models/gemini-2.5-pro",
    ],
)
def test_registry_resolves_gemini_names(model: str) -> None:
    assert LLMRegistry.resolve(model) is Gemini
    assert LLMRegistry.new_llm(model).model == model


@pytest.mark.parametrize("model", ["gpt-4o", "projects/p/locations/l/publishers/meta/models/x"])
def test_registry_leaves_other_names_alone(model: str) -> None:
    with pytest.raises(ValueError):
        LLMRegistry.resolve(model)


CREDENTIAL_VARIABLES = (
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "GOOGLE_APPLICATION_CREDENTIALS",
)


@pytest.fixture
def no_credentials(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No key, no Vertex settings, no gcloud config, no metadata-server probe."""
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("CLOUDSDK_CONFIG", str(tmp_path))
    monkeypatch.setenv("NO_GCE_CHECK", "True")


def assert_names_every_variable(error: GeminiCredentialsError) -> None:
    for name in CREDENTIAL_VARIABLES:
        assert name in str(error)
    assert not isinstance(error, ValueError)


@pytest.mark.usefixtures("no_credentials")
async def test_a_call_without_credentials_raises_our_error_naming_the_variables() -> None:
    gemini = Gemini()
    with pytest.raises(GeminiCredentialsError) as caught:
        await collect(gemini, request(user("hi")))
    assert_names_every_variable(caught.value)
    assert caught.value.code == "config_error"


@pytest.mark.usefixtures("no_credentials")
async def test_vertex_without_credentials_raises_our_error(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("GOOGLE_GENAI_USE_VERTEXAI", "true")
    with pytest.raises(GeminiCredentialsError) as caught:
        await collect(Gemini(), request(user("hi")))
    assert_names_every_variable(caught.value)


@pytest.mark.usefixtures("no_credentials")
async def test_a_run_on_a_gemini_name_without_credentials_fails_with_our_error() -> None:
    agent = Agent(name="assistant", model="gemini-2.5-flash")
    async with InMemoryRunner(agent, app_name="demo") as runner:
        with pytest.raises(GeminiCredentialsError, match="GOOGLE_API_KEY"):
            await runner.run_debug("hi", quiet=True)
