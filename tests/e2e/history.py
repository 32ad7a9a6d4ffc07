"""What a model needs of a stored history, checked over HTTP (shared by the replica tests)."""

from __future__ import annotations

from typing import Any

import httpx

SESSIONS = "/apps/scripted/users/u/sessions"


def message(text: str) -> dict[str, Any]:
    """A user message for `newMessage`."""
    return {"role": "user", "parts": [{"text": text}]}


async def stored_events(http: httpx.AsyncClient, sid: str) -> list[dict[str, Any]]:
    """Return the session's stored events (GET .../events, every page)."""
    events: list[dict[str, Any]] = []
    after: int | None = 0
    while after is not None:
        response = await http.get(f"{SESSIONS}/{sid}/events", params={"after": after})
        assert response.status_code == 200, response.text
        page = response.json()
        events += page["events"]
        after = page.get("nextAfter")
    return events


def calls(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The function calls of an event."""
    parts = (event.get("content") or {}).get("parts") or []
    return [p["functionCall"] for p in parts if "functionCall" in p]


def responses(event: dict[str, Any]) -> list[dict[str, Any]]:
    """The function responses of an event."""
    parts = (event.get("content") or {}).get("parts") or []
    return [p["functionResponse"] for p in parts if "functionResponse" in p]


def assert_well_formed(events: list[dict[str, Any]]) -> list[str]:
    """Check what a model needs of a history; return the invocations in order.

    `seq` is contiguous from 1, every function call is answered by the very next event, and
    the events of one invocation are never interleaved with another's.
    """
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    order: list[str] = []
    for index, event in enumerate(events):
        invocation = event["invocationId"]
        if not order or order[-1] != invocation:
            assert invocation not in order, f"invocation {invocation} interleaved at {index}"
            order.append(invocation)
        event_calls = calls(event)
        if event_calls:
            assert index + 1 < len(events), f"call left unanswered: {event_calls}"
            answers = {r["id"] for r in responses(events[index + 1])}
            assert {c["id"] for c in event_calls} == answers
            assert events[index + 1]["invocationId"] == invocation
    return order
