"""The `scripted` app: one LlmAgent on a ScriptedModel that answers by the user's message.

chat ...    -> "ok"
tool ...    -> get_weather(city="Paris"), then "It is sunny in Paris."
stream ...  -> "one two three four" (word chunks under token streaming)
save ...    -> save_note(text="hello artifact"), then "Saved."
slow ...    -> slow_tool() (waits 30 s), then "finally"
pause ...   -> pause_tool() (waits 1.5 s), then "resumed"
fail ...    -> get_weather(...), then the model fails with ModelError (in-band error)
crash ...   -> get_weather(...), then the model raises RuntimeError (in-band internal)
boom ...    -> the model fails at once with ModelError (in-band: the message is stored)
raise ...   -> the model raises RuntimeError at once (in-band internal)
loop ...    -> get_weather(...) forever (stopped by maxLlmCalls)
state ...   -> set_color(color="blue") (a stateDelta), then "Noted: blue."
ask ...     -> ask_human(question=...), a long-running tool that answers at once with a
               pending status, then "Thanks for the answer." (the `handoff` app leaves its
               call open instead)
"""

from __future__ import annotations

from typing import Any

from app.agents import LlmAgent
from app.errors import ModelError
from app.models import LlmRequest
from app.testing import ScriptedModel, function_call
from app.tools import LongRunningFunctionTool

from .tools import ask_human, get_weather, pause_tool, save_note, set_color, slow_tool


def _last_user_text(request: LlmRequest) -> str:
    for content in reversed(request.contents):
        if content.role == "user" and content.parts and content.parts[0].text:
            return content.parts[0].text
    return ""


def respond(request: LlmRequest) -> Any:
    """Pick the scripted reply for this model call."""
    last = request.contents[-1] if request.contents else None
    answered = bool(last and last.parts and last.parts[0].function_response)
    message = _last_user_text(request)
    command = message.split()[0].lower() if message.split() else "chat"
    if command == "boom":
        return ModelError("the model backend is down", status=503)
    if command == "raise":
        return RuntimeError("secret first-call detail")
    if command == "loop":
        return function_call("get_weather", {"city": "Paris"})
    if answered:
        if command == "fail":
            return ModelError("the model backend failed mid-run", status=500)
        if command == "crash":
            return RuntimeError("secret internal detail")
        replies = {
            "save": "Saved.",
            "slow": "finally",
            "pause": "resumed",
            "state": "Noted: blue.",
            "ask": "Thanks for the answer.",
        }
        return replies.get(command, "It is sunny in Paris.")
    if command in ("tool", "fail", "crash"):
        return function_call("get_weather", {"city": "Paris"})
    if command == "save":
        return function_call("save_note", {"text": "hello artifact"})
    if command == "slow":
        return function_call("slow_tool", {})
    if command == "pause":
        return function_call("pause_tool", {})
    if command == "state":
        return function_call("set_color", {"color": "blue"})
    if command == "ask":
        return function_call("ask_human", {"question": "Which city?"})
    if command == "stream":
        return "one two three four"
    return "ok"


root_agent = LlmAgent(
    name="scripted",
    description="Answers from a script chosen by the first word of the message.",
    model=ScriptedModel(responses=[respond] * 100_000),
    instruction="You are a test agent.",
    tools=[
        get_weather,
        save_note,
        slow_tool,
        pause_tool,
        set_color,
        LongRunningFunctionTool(ask_human),
    ],
)
