"""Event.detached(): a deep copy sharing nothing mutable, without validation."""

from __future__ import annotations

from google.genai import types

from app.events import Event, EventActions


def _event() -> Event:
    call = types.FunctionCall(id="c1", name="lookup", args={"city": "Paris", "tags": ["a"]})
    return Event(
        author="agent",
        invocation_id="e-1",
        content=types.Content(
            role="model", parts=[types.Part(text="hi"), types.Part(function_call=call)]
        ),
        actions=EventActions(state_delta={"k": {"nested": [1, 2]}}),
        long_running_tool_ids={"c1"},
        custom_metadata={"trace": {"id": 1}},
        seq=4,
    )


def test_detached_is_equal_and_shares_nothing_mutable() -> None:
    original = _event()
    copy = original.detached()
    assert copy == original and type(copy) is Event
    copy.content.parts[0].text = "edited"  # type: ignore[union-attr, index]
    copy.content.parts[1].function_call.args["tags"].append("b")  # type: ignore[union-attr, index]
    copy.actions.state_delta["k"]["nested"].append(3)
    copy.long_running_tool_ids.add("c2")  # type: ignore[union-attr]
    copy.custom_metadata["trace"]["id"] = 2  # type: ignore[index]
    assert original == _event().model_copy(
        update={"id": original.id, "timestamp": original.timestamp}
    )


def test_detached_encodes_its_own_edits_and_keeps_json_only_when_asked() -> None:
    original = _event()
    encoded = original.to_json()  # cached on the stored event
    kept = original.detached(keep_json=True)
    assert kept.to_json() is encoded
    fresh = original.detached()
    fresh.content.parts[0].text = "edited"  # type: ignore[union-attr, index]
    assert '"edited"' in fresh.to_json()
    assert original.to_json() is encoded
