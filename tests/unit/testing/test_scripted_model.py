"""ScriptedModel: each model call consumes the next item of its script."""

from __future__ import annotations

import pytest
from google.genai import types

from app.events import LlmResponse
from app.models import LlmRequest
from app.testing import ScriptedModel, ScriptExhaustedError, function_call


def request(text: str = "hi") -> LlmRequest:
    return LlmRequest(contents=[types.Content(role="user", parts=[types.Part(text=text)])])


async def call(
    model: ScriptedModel, llm_request: LlmRequest | None = None, stream: bool = False
) -> list[LlmResponse]:
    return [r async for r in model.generate_content_async(llm_request or request(), stream=stream)]


def text_of(response: LlmResponse) -> str:
    assert response.content is not None
    return "".join(p.text or "" for p in response.content.parts or [])


async def test_string_item_becomes_a_model_text_reply() -> None:
    (response,) = await call(ScriptedModel(responses=["Hello!"]))

    assert response.content == types.Content(role="model", parts=[types.Part(text="Hello!")])
    assert not response.partial


async def test_part_item_becomes_a_one_part_reply() -> None:
    (response,) = await call(
        ScriptedModel(responses=[function_call("get_weather", {"city": "Oslo"})])
    )

    assert response.content is not None and response.content.parts is not None
    (part,) = response.content.parts
    assert part.function_call is not None
    assert (part.function_call.name, part.function_call.args) == ("get_weather", {"city": "Oslo"})
    assert response.content.role == "model"


async def test_list_item_keeps_every_part_in_order() -> None:
    model = ScriptedModel(
        responses=[[types.Part(text="Checking."), function_call("a"), function_call("b")]]
    )

    (response,) = await call(model)

    assert response.content is not None and response.content.parts is not None
    parts = response.content.parts
    assert parts[0].text == "Checking."
    assert [p.function_call.name for p in parts[1:] if p.function_call] == ["a", "b"]


async def test_llm_response_item_is_used_as_is() -> None:
    scripted = LlmResponse(error_code="SAFETY", error_message="blocked")

    (response,) = await call(ScriptedModel(responses=[scripted]))

    assert response == scripted


async def test_exception_item_is_raised() -> None:
    model = ScriptedModel(responses=[ConnectionError("model unreachable")])

    with pytest.raises(ConnectionError, match="model unreachable"):
        await call(model)


async def test_sync_callable_item_receives_the_request() -> None:
    seen: list[LlmRequest] = []

    def reply(llm_request: LlmRequest) -> str:
        seen.append(llm_request)
        return f"you said {llm_request.contents[-1].parts[0].text}"  # type: ignore[index]

    llm_request = request("ping")
    (response,) = await call(ScriptedModel(responses=[reply]), llm_request)

    assert seen == [llm_request]
    assert text_of(response) == "you said ping"


async def test_async_callable_item_is_awaited() -> None:
    async def reply(llm_request: LlmRequest) -> types.Part:
        return function_call("lookup", {"q": "x"})

    (response,) = await call(ScriptedModel(responses=[reply]))

    assert response.content is not None and response.content.parts is not None
    assert response.content.parts[0].function_call is not None
    assert response.content.parts[0].function_call.name == "lookup"


async def test_callable_may_return_an_exception_to_raise() -> None:
    model = ScriptedModel(responses=[lambda _req: TimeoutError("slow model")])

    with pytest.raises(TimeoutError, match="slow model"):
        await call(model)


async def test_items_are_consumed_one_per_call() -> None:
    model = ScriptedModel(responses=["one", "two"])

    first = await call(model)
    second = await call(model)

    assert [text_of(first[0]), text_of(second[0])] == ["one", "two"]
    assert model.calls == 2


async def test_streaming_text_arrives_as_partial_chunks_then_the_aggregate() -> None:
    text = "The weather in Oslo is  cold today."
    responses = await call(ScriptedModel(responses=[text]), stream=True)

    *chunks, final = responses

    assert len(chunks) > 1
    assert all(c.partial for c in chunks)
    assert not final.partial
    assert "".join(text_of(c) for c in chunks) == text
    assert text_of(final) == text


async def test_streaming_does_not_chunk_function_calls() -> None:
    responses = await call(ScriptedModel(responses=[function_call("f")]), stream=True)

    assert len(responses) == 1
    assert not responses[0].partial


async def test_every_request_is_recorded_in_order() -> None:
    model = ScriptedModel(responses=["a", "b"])
    first, second = request("one"), request("two")

    await call(model, first)
    await call(model, second)

    assert model.requests == [first, second]


async def test_exhausted_script_raises_a_clear_error() -> None:
    model = ScriptedModel(responses=["only one"])
    await call(model)

    with pytest.raises(ScriptExhaustedError, match=r"call #2.*1 item"):
        await call(model)

    assert len(model.requests) == 2


async def test_empty_script_raises_on_first_call() -> None:
    with pytest.raises(ScriptExhaustedError, match="call #1"):
        await call(ScriptedModel())


def test_script_exhausted_error_is_a_runtime_error() -> None:
    assert issubclass(ScriptExhaustedError, RuntimeError)


async def test_script_is_accepted_positionally_as_the_readme_shows() -> None:
    model = ScriptedModel(["Sunny in Paris.", "Bye."], model="scripted-2")
    assert model.responses == ["Sunny in Paris.", "Bye."]
    assert model.model == "scripted-2"
    (response,) = await call(model)
    assert text_of(response) == "Sunny in Paris."


def test_script_given_twice_is_refused() -> None:
    with pytest.raises(TypeError, match="both positionally and as responses="):
        ScriptedModel(["a"], responses=["b"])
