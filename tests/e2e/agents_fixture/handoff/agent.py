"""The `handoff` app: every question goes to a human through a long-running tool.

Any message -> ask_human(question=<the message>), which returns nothing: the run ends with the
call open (`longRunningToolIds`). The client's function response for it -> "You said: <answer>"
(the answer's `result`, or the whole response as JSON).
"""

from __future__ import annotations

import json
from typing import Any

from app.agents import LlmAgent
from app.models import LlmRequest
from app.testing import ScriptedModel, function_call
from app.tools import LongRunningFunctionTool


def ask_human(question: str) -> None:
    """Ask a human; the answer arrives later as the client's function response."""
    return None


def respond(request: LlmRequest) -> Any:
    """Ask about the user's text; echo the human's answer once it arrives."""
    last = request.contents[-1] if request.contents else None
    part = last.parts[0] if last and last.parts else None
    if part is not None and part.function_response is not None:
        answer = part.function_response.response or {}
        return f"You said: {answer.get('result', json.dumps(answer, sort_keys=True))}"
    return function_call("ask_human", {"question": part.text if part and part.text else ""})


root_agent = LlmAgent(
    name="handoff",
    description="Hands every question to a human (a long-running tool).",
    model=ScriptedModel(responses=[respond] * 100_000),
    instruction="You are a test agent.",
    tools=[LongRunningFunctionTool(ask_human)],
)
