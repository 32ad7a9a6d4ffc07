"""Event and LlmResponse: the JSON the API emits and accepts, and the final-response rules."""

from __future__ import annotations

import base64
import json

import pytest
from google.genai import types
from pydantic import ValidationError

from app.events import Event, EventActions, EventCompaction, LlmResponse


def text_content(text: str, role: str = "model") -> types.Content:
    return types.Content(role=role, parts=[types.Part(text=text)])


def call_part(name: str = "get_weather", call_id: str = "call-1") -> types.Part:
    return types.Part(
        function_call=types.FunctionCall(id=call_id, name=name, args={"city": "Oslo"})
    )


def response_part(name: str = "get_weather", call_id: str = "call-1") -> types.Part:
    return types.Part(
        function_response=types.FunctionResponse(id=call_id, name=name, response={"temp": 3})
    )


# --- JSON output -------------------------------------------------------------------------


def test_to_json_uses_camel_case_keys_at_every_level() -> None:
    event = Event(
        author="root",
        invocation_id="e-1",
        content=types.Content(role="model", parts=[call_part()]),
        actions=EventActions(state_delta={"k": 1}, artifact_delta={"a.txt": 0}),
        long_running_tool_ids={"call-1"},
    )

    data = json.loads(event.to_json())

    assert data["invocationId"] == "e-1"
    assert data["longRunningToolIds"] == ["call-1"]
    assert data["actions"]["stateDelta"] == {"k": 1}
    assert data["actions"]["artifactDelta"] == {"a.txt": 0}
    assert data["content"]["parts"][0]["functionCall"]["name"] == "get_weather"
    assert "invocation_id" not in data
    assert "state_delta" not in data["actions"]


def test_to_json_leaves_out_unset_fields_instead_of_null() -> None:
    event = Event(author="root", content=text_content("hi"))

    raw = event.to_json()
    data = json.loads(raw)

    assert "null" not in raw
    for absent in ("branch", "partial", "errorCode", "turnComplete", "usageMetadata"):
        assert absent not in data


def test_to_json_encodes_inline_bytes_as_base64() -> None:
    payload = b"\x00\xffpng"
    event = Event(
        author="root",
        content=types.Content(
            role="model",
            parts=[types.Part(inline_data=types.Blob(mime_type="image/png", data=payload))],
        ),
    )

    inline = json.loads(event.to_json())["content"]["parts"][0]["inlineData"]

    assert inline["mimeType"] == "image/png"
    assert base64.b64decode(inline["data"]) == payload
    assert event.to_dict()["content"]["parts"][0]["inlineData"]["data"] == inline["data"]  # type: ignore[index]


# --- JSON input --------------------------------------------------------------------------


@pytest.mark.parametrize(
    "payload",
    [
        {
            "author": "root",
            "invocation_id": "e-7",
            "long_running_tool_ids": ["c1"],
            "actions": {"state_delta": {"k": "v"}, "transfer_to_agent": "child"},
            "content": {"role": "model", "parts": [{"function_call": {"name": "f", "id": "c1"}}]},
        },
        {
            "author": "root",
            "invocationId": "e-7",
            "longRunningToolIds": ["c1"],
            "actions": {"stateDelta": {"k": "v"}, "transferToAgent": "child"},
            "content": {"role": "model", "parts": [{"functionCall": {"name": "f", "id": "c1"}}]},
        },
    ],
    ids=["snake_case", "camelCase"],
)
def test_event_accepts_snake_and_camel_case_keys(payload: dict[str, object]) -> None:
    event = Event.model_validate(payload)

    assert event.invocation_id == "e-7"
    assert event.long_running_tool_ids == {"c1"}
    assert event.actions.state_delta == {"k": "v"}
    assert event.actions.transfer_to_agent == "child"
    assert [c.name for c in event.get_function_calls()] == ["f"]


def test_round_trip_keeps_inline_bytes_function_calls_and_actions() -> None:
    event = Event(
        author="root",
        invocation_id="e-1",
        branch="root.child",
        content=types.Content(
            role="model",
            parts=[
                types.Part(text="here"),
                types.Part(inline_data=types.Blob(mime_type="audio/pcm", data=bytes(range(256)))),
                call_part(),
            ],
        ),
        actions=EventActions(
            state_delta={"user:name": "Ada", "n": [1, 2]},
            artifact_delta={"report.pdf": 2},
            escalate=True,
        ),
        long_running_tool_ids={"call-1"},
    )

    restored = Event.model_validate_json(event.to_json())

    assert restored == event
    assert restored.content is not None and restored.content.parts is not None
    assert restored.content.parts[1].inline_data is not None
    assert restored.content.parts[1].inline_data.data == bytes(range(256))


def test_round_trip_keeps_compaction_content_as_content() -> None:
    summary = text_content("The user asked about Oslo weather twice.")
    event = Event(
        author="root",
        actions=EventActions(
            compaction=EventCompaction(
                start_timestamp=1.0, end_timestamp=2.0, compacted_content=summary
            )
        ),
    )

    restored = Event.model_validate_json(event.to_json())

    assert restored.actions.compaction is not None
    assert restored.actions.compaction.compacted_content == summary


def test_unknown_event_field_is_rejected() -> None:
    with pytest.raises(ValidationError, match="bogus"):
        Event.model_validate({"author": "root", "bogus": 1})


def test_unknown_actions_field_is_rejected() -> None:
    with pytest.raises(ValidationError, match="stateDeltaa"):
        Event.model_validate({"author": "root", "actions": {"stateDeltaa": {}}})


def test_author_is_required() -> None:
    with pytest.raises(ValidationError, match="author"):
        Event.model_validate({"content": {"role": "user", "parts": [{"text": "hi"}]}})


def test_each_event_gets_a_distinct_id() -> None:
    assert Event(author="a").id != Event(author="a").id


# --- is_final_response -------------------------------------------------------------------


def test_plain_text_reply_is_final() -> None:
    assert Event(author="root", content=text_content("done")).is_final_response()


def test_partial_text_chunk_is_not_final() -> None:
    assert not Event(author="root", content=text_content("do"), partial=True).is_final_response()


def test_function_call_is_not_final() -> None:
    event = Event(author="root", content=types.Content(role="model", parts=[call_part()]))

    assert not event.is_final_response()


def test_function_response_is_not_final() -> None:
    event = Event(author="root", content=types.Content(role="user", parts=[response_part()]))

    assert not event.is_final_response()


def test_function_response_with_skip_summarization_is_final() -> None:
    event = Event(
        author="root",
        content=types.Content(role="user", parts=[response_part()]),
        actions=EventActions(skip_summarization=True),
    )

    assert event.is_final_response()


def test_function_call_of_a_long_running_tool_is_final() -> None:
    event = Event(
        author="root",
        content=types.Content(role="model", parts=[call_part()]),
        long_running_tool_ids={"call-1"},
    )

    assert event.is_final_response()


def test_error_without_function_calls_is_final() -> None:
    event = Event(author="root", error_code="SAFETY", error_message="blocked")

    assert event.is_final_response()


def test_partial_error_is_not_final() -> None:
    event = Event(author="root", error_code="SAFETY", partial=True)

    assert not event.is_final_response()


def test_error_alongside_function_calls_is_not_final() -> None:
    event = Event(
        author="root",
        error_code="MALFORMED_FUNCTION_CALL",
        content=types.Content(role="model", parts=[call_part()]),
    )

    assert not event.is_final_response()


# --- function call accessors -------------------------------------------------------------


def test_get_function_calls_and_responses_return_them_in_order() -> None:
    event = Event(
        author="root",
        content=types.Content(
            role="model",
            parts=[
                call_part("a", "1"),
                types.Part(text="between"),
                call_part("b", "2"),
                response_part("c", "3"),
            ],
        ),
    )

    assert [(c.name, c.id) for c in event.get_function_calls()] == [("a", "1"), ("b", "2")]
    assert [(r.name, r.id) for r in event.get_function_responses()] == [("c", "3")]


def test_event_without_content_has_no_function_calls_or_responses() -> None:
    event = Event(author="root")

    assert event.get_function_calls() == []
    assert event.get_function_responses() == []


# --- LlmResponse.create ------------------------------------------------------------------


def genai_response(**fields: object) -> types.GenerateContentResponse:
    return types.GenerateContentResponse.model_validate(fields)


def test_create_from_text_response_keeps_content_usage_and_version() -> None:
    response = genai_response(
        candidates=[
            {"content": {"role": "model", "parts": [{"text": "Hello"}]}, "finishReason": "STOP"}
        ],
        usageMetadata={"promptTokenCount": 3, "candidatesTokenCount": 1, "totalTokenCount": 4},
        modelVersion="gemini-2.5-flash-001",
    )

    llm_response = LlmResponse.create(response)

    assert llm_response.content == text_content("Hello")
    assert llm_response.finish_reason == types.FinishReason.STOP
    assert llm_response.usage_metadata is not None
    assert llm_response.usage_metadata.total_token_count == 4
    assert llm_response.model_version == "gemini-2.5-flash-001"
    assert llm_response.error_code is None


def test_create_from_function_call_response_keeps_the_call() -> None:
    response = genai_response(
        candidates=[
            {
                "content": {
                    "role": "model",
                    "parts": [{"functionCall": {"name": "get_weather", "args": {"city": "Oslo"}}}],
                },
                "finishReason": "STOP",
            }
        ]
    )

    llm_response = LlmResponse.create(response)

    assert llm_response.content is not None and llm_response.content.parts is not None
    call = llm_response.content.parts[0].function_call
    assert call is not None
    assert (call.name, call.args) == ("get_weather", {"city": "Oslo"})


def test_create_from_blocked_prompt_is_an_error() -> None:
    response = genai_response(
        promptFeedback={"blockReason": "SAFETY", "blockReasonMessage": "unsafe prompt"}
    )

    llm_response = LlmResponse.create(response)

    assert llm_response.error_code == "SAFETY"
    assert llm_response.error_message == "unsafe prompt"
    assert llm_response.content is None


def test_create_without_candidates_is_an_error() -> None:
    llm_response = LlmResponse.create(genai_response())

    assert llm_response.error_code
    assert llm_response.error_message
    assert llm_response.content is None


def test_create_with_non_stop_finish_and_no_content_is_an_error() -> None:
    response = genai_response(
        candidates=[{"finishReason": "SAFETY", "finishMessage": "candidate blocked"}]
    )

    llm_response = LlmResponse.create(response)

    assert llm_response.error_code == "SAFETY"
    assert llm_response.error_message == "candidate blocked"
    assert llm_response.finish_reason == types.FinishReason.SAFETY


def test_create_with_non_stop_finish_but_content_keeps_the_content() -> None:
    response = genai_response(
        candidates=[
            {
                "content": {"role": "model", "parts": [{"text": "trunc"}]},
                "finishReason": "MAX_TOKENS",
            }
        ]
    )

    llm_response = LlmResponse.create(response)

    assert llm_response.error_code is None
    assert llm_response.content == text_content("trunc")
    assert llm_response.finish_reason == types.FinishReason.MAX_TOKENS


def test_stored_event_json_is_replayed_as_stored_and_refreshed_on_new_content() -> None:
    raw = '{"id":"e1","invocationId":"i","author":"a","seq":3,"timestamp":1.0,"actions":{}}'
    event = Event.from_stored_json(raw)
    assert event.to_json() == raw  # the stored bytes, not a re-encoding
    event.content = types.Content(role="model", parts=[types.Part(text="new")])
    assert '"text":"new"' in event.to_json()  # a changed content is encoded afresh
