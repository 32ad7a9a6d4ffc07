"""Tools of the `scripted` test app (a sibling module, to exercise relative imports)."""

from __future__ import annotations

import asyncio
from typing import Any

from google.genai import types

from app.tools import ToolContext

SLOW_TOOL_SECONDS = 30.0
"""How long `slow_tool` waits; tests disconnect long before."""


def get_weather(city: str) -> dict[str, Any]:
    """Return the weather for a city."""
    return {"city": city, "forecast": "sunny"}


async def save_note(text: str, tool_context: ToolContext) -> dict[str, Any]:
    """Save `text` as the artifact `note.txt`."""
    version = await tool_context.save_artifact("note.txt", types.Part(text=text))
    return {"saved": "note.txt", "version": version}


async def slow_tool() -> dict[str, Any]:
    """Wait long enough for a client to disconnect mid-run."""
    await asyncio.sleep(SLOW_TOOL_SECONDS)
    return {"done": True}


PAUSE_TOOL_SECONDS = 1.5
"""How long `pause_tool` waits: long enough to reattach from another replica meanwhile."""


async def pause_tool() -> dict[str, Any]:
    """Wait a little, so a run has events both before and after a reattach."""
    await asyncio.sleep(PAUSE_TOOL_SECONDS)
    return {"paused": PAUSE_TOOL_SECONDS}


def set_color(color: str, tool_context: ToolContext) -> dict[str, Any]:
    """Remember the user's favourite colour in the session state (a `stateDelta`)."""
    tool_context.state["color"] = color
    return {"color": color}


def ask_human(question: str) -> dict[str, Any]:
    """Ask a human; the answer comes later as a function response from the client."""
    return {"status": "pending", "question": question}
