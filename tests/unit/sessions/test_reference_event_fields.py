"""Every field the reference runtime's Event/LlmResponse carries survives every session store."""

from __future__ import annotations

from typing import Any

import pytest
from google.genai import types

from app.events import Event, EventActions
from app.events.event import NodeInfo
from app.models.cache_metadata import CacheMetadata
from app.sessions import BaseSessionService

from .session_stores import Store

# One value per LlmResponse field beyond content; each must come back equal after a reload.
RESPONSE_FIELDS: dict[str, Any] = {
    "model_version": "gemini-2.5-flash-001",
    "grounding_metadata": types.GroundingMetadata(web_search_queries=["weather paris"]),
    "turn_complete": True,
    "turn_complete_reason": types.TurnCompleteReason.NEED_MORE_INPUT,
    "interaction_status": types.InteractionStatus.IDLE,
    "finish_reason": types.FinishReason.MAX_TOKENS,
    "error_code": "RESOURCE_EXHAUSTED",
    "error_message": "quota",
    "interrupted": True,
    "custom_metadata": {"trace": {"id": 7, "tags": ["a", "b"]}},
    "usage_metadata": types.GenerateContentResponseUsageMetadata(
        prompt_token_count=11, candidates_token_count=5, total_token_count=16
    ),
    "live_session_resumption_update": types.LiveServerSessionResumptionUpdate(
        new_handle="handle-1", resumable=True, last_consumed_client_message_index=3
    ),
    "live_session_id": "live-1",
    "go_away": types.LiveServerGoAway(time_left="10s"),
    "voice_activity": types.VoiceActivity(
        voice_activity_type=types.VoiceActivityType.ACTIVITY_START
    ),
    "input_transcription": types.Transcription(text="hello there", finished=True),
    "output_transcription": types.Transcription(text="general kenobi", finished=False),
    "avg_logprobs": -0.25,
    "logprobs_result": types.LogprobsResult(
        chosen_candidates=[types.LogprobsResultCandidate(token="hi", log_probability=-0.1)],
        top_candidates=[
            types.LogprobsResultTopCandidates(
                candidates=[types.LogprobsResultCandidate(token="hi", log_probability=-0.1)]
            )
        ],
    ),
    "cache_metadata": CacheMetadata(
        cache_name="projects/p/locations/l/cachedContents/1",
        expire_time=1_900_000_000.5,
        fingerprint="abc123",
        invocations_used=2,
        contents_count=4,
        created_at=1_899_999_000.0,
    ),
    "citation_metadata": types.CitationMetadata(
        citations=[types.Citation(start_index=0, end_index=5, uri="https://example.com/a")]
    ),
    "interaction_id": "interaction-1",
    "environment_id": "env-1",
}

ACTION_FIELDS: dict[str, Any] = {
    "skip_summarization": True,
    "state_delta": {"k": [1, {"nested": None}]},
    "artifact_delta": {"report.txt": 2},
    "transfer_to_agent": "helper",
    "escalate": True,
    "end_of_agent": True,
    "agent_state": {"current_sub_agent": "b", "times_looped": 3},
    "transfer_reason": "needs a specialist",
    "rewind_before_invocation_id": "e-0",
    "route": ["left", 2, True],
    "render_ui_widgets": [{"type": "chart", "data": [1, 2]}],
    "set_model_response": {"answer": 42},
}

# Event fields beyond LlmResponse's that the reference's workflows set.
WORKFLOW_FIELDS: dict[str, Any] = {
    "output": {"score": 0.5, "labels": ["a"]},
    "node_info": NodeInfo(path="wf/step", output_for=["wf"], message_as_output=True),
    "isolation_scope": "fc-1",
}


def full_event() -> Event:
    """A model event with every reference field set."""
    return Event(
        author="root_agent",
        invocation_id="e-full",
        branch="root_agent.helper",
        content=types.Content(role="model", parts=[types.Part(text="answer")]),
        long_running_tool_ids={"call-1"},
        actions=EventActions(**ACTION_FIELDS),
        **RESPONSE_FIELDS,
        **WORKFLOW_FIELDS,
    )


async def stored_copy(service: BaseSessionService, event: Event) -> Event:
    """Append `event` to a new session and return it as a fresh service read reloads it."""
    session = await service.create_session(app_name="app", user_id="u")
    await service.append_event(session, event)
    loaded = await service.get_session(app_name="app", user_id="u", session_id=session.id)
    assert loaded is not None and len(loaded.events) == 1
    return loaded.events[0]


async def test_every_reference_field_round_trips(store: Store) -> None:
    original = full_event()
    # A second service on the same data reads from the database, not this process's cache.
    await stored_copy(store.service, original)
    reader = store.replica()
    [session] = (await reader.list_sessions(app_name="app", user_id="u")).sessions
    loaded = await reader.get_session(app_name="app", user_id="u", session_id=session.id)
    assert loaded is not None
    [event] = loaded.events
    for name, value in RESPONSE_FIELDS.items():
        assert getattr(event, name) == value, name
    for name, value in ACTION_FIELDS.items():
        assert getattr(event.actions, name) == value, name
    for name, value in WORKFLOW_FIELDS.items():
        assert getattr(event, name) == value, name
    assert event.long_running_tool_ids == {"call-1"}
    assert event.branch == "root_agent.helper"
    assert event.model_dump(exclude={"seq"}) == original.model_dump(exclude={"seq"})


def test_reference_field_names_are_accepted_in_both_cases() -> None:
    event = full_event()
    camel = event.to_dict()
    assert camel["citationMetadata"]["citations"][0]["uri"] == "https://example.com/a"
    assert camel["liveSessionResumptionUpdate"]["newHandle"] == "handle-1"
    assert camel["cacheMetadata"]["fingerprint"] == "abc123"
    assert camel["nodeInfo"] == {"path": "wf/step", "outputFor": ["wf"], "messageAsOutput": True}
    assert camel["actions"]["setModelResponse"] == {"answer": 42}
    assert Event.model_validate(camel) == Event.model_validate(event.model_dump()) == event


def test_events_without_the_new_fields_serialize_as_before() -> None:
    plain = Event(author="a", content=types.Content(role="model", parts=[types.Part(text="x")]))
    assert set(plain.to_dict()) == {
        "content",
        "id",
        "invocationId",
        "author",
        "actions",
        "timestamp",
    }
    assert plain.actions.is_empty()
    assert not EventActions(route=False).is_empty()


def test_unknown_event_fields_are_still_refused() -> None:
    with pytest.raises(ValueError, match="not_a_field"):
        Event(author="a", not_a_field=1)  # type: ignore[call-arg]


def test_cache_metadata_is_all_active_fields_or_none() -> None:
    fingerprint_only = CacheMetadata(fingerprint="f", contents_count=2)
    assert not fingerprint_only.expire_soon
    with pytest.raises(ValueError, match="set together"):
        CacheMetadata(fingerprint="f", contents_count=2, cache_name="c")
    expired = CacheMetadata(
        fingerprint="f", contents_count=1, cache_name="c", expire_time=1.0, invocations_used=0
    )
    assert expired.expire_soon


def test_llm_response_create_keeps_candidate_metadata() -> None:
    from app.models.llm_response import LlmResponse

    citation = types.CitationMetadata(citations=[types.Citation(uri="https://example.com")])
    response = types.GenerateContentResponse(
        model_version="m-1",
        candidates=[
            types.Candidate(
                content=types.Content(role="model", parts=[types.Part(text="x")]),
                citation_metadata=citation,
                avg_logprobs=-0.5,
                finish_reason=types.FinishReason.STOP,
            )
        ],
    )
    created = LlmResponse.create(response)
    assert created.citation_metadata == citation
    assert created.avg_logprobs == -0.5 and created.model_version == "m-1"


async def test_the_writers_session_equals_the_one_read_back(store: Store) -> None:
    # Code written for the reference compares sessions; caches (encoded JSON) must not count.
    service = store.service
    session = await service.create_session(app_name="app", user_id="u")
    await service.append_event(session, full_event())
    loaded = await service.get_session(app_name="app", user_id="u", session_id=session.id)
    assert loaded == session
    assert loaded is not None and loaded.events[0] == session.events[0]
    assert loaded.events[0] != loaded.events[0].model_copy(update={"author": "someone_else"})
