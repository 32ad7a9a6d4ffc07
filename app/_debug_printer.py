"""The transcript `Runner.run_debug` prints."""

from __future__ import annotations

import json

from app.events.event import Event


def format_event(event: Event, *, verbose: bool = False) -> list[str]:
    """Return the transcript lines for one event (none for partial chunks)."""
    if event.partial:
        return []
    lines: list[str] = []
    if event.error_code:
        lines.append(f"{event.author} > [error {event.error_code}] {event.error_message or ''}")
    text = event.text()
    if text:
        lines.append(f"{event.author} > {text}")
    if verbose:
        for call in event.get_function_calls():
            args = json.dumps(call.args or {}, default=str)
            lines.append(f"{event.author} > [call] {call.name}({args})")
        for response in event.get_function_responses():
            result = json.dumps(response.response or {}, default=str)
            lines.append(f"{event.author} > [result] {response.name} -> {result}")
        if event.actions.state_delta:
            lines.append(
                f"{event.author} > [state] {json.dumps(event.actions.state_delta, default=str)}"
            )
    return lines
