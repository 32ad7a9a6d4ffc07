"""What memory keeps of an event: its user or model text, or a finished live transcription."""

from __future__ import annotations

from dataclasses import dataclass

from google.genai import types

from app.events.event import Event


@dataclass(frozen=True)
class Remembered:
    """The searchable text of one event and the content a memory entry returns for it."""

    text: str
    content: types.Content


def remembered(event: Event) -> Remembered | None:
    """Return what memory keeps of `event`, or None (tool calls, state changes, markers).

    Text parts of user and model contents are kept (thoughts, function calls and responses,
    and inline data are not); a live event without content contributes its finished input
    (user) or output (model) transcription.
    """
    if event.partial:
        return None
    content = event.content
    if content is not None and content.parts:
        texts = [p.text for p in content.parts if p.text and not p.thought]
        if any(t.strip() for t in texts):
            role = content.role or ("user" if event.author == "user" else "model")
            parts = [types.Part(text=t) for t in texts]
            return Remembered(" ".join(texts), types.Content(role=role, parts=parts))
    for role, transcription in (
        ("user", event.input_transcription),
        ("model", event.output_transcription),
    ):
        if transcription is None or transcription.finished is False:
            continue
        text = transcription.text or ""
        if text.strip():
            return Remembered(text, types.Content(role=role, parts=[types.Part(text=text)]))
    return None
