"""The `metered` app: a ScriptedModel whose every answer reports its token use.

chat [N] -> "ok", with `usageMetadata.totalTokenCount` N (default 100)
tool [N] -> get_weather(city="Paris") then "sunny": two model responses of N tokens each
"""

from __future__ import annotations

from google.genai import types

from app.agents import LlmAgent
from app.events.llm_response import LlmResponse
from app.models import LlmRequest
from app.testing import ScriptedModel

DEFAULT_TOKENS = 100


def get_weather(city: str) -> dict[str, str]:
    """Return the weather of a city."""
    return {"city": city, "weather": "sunny"}


def _usage(tokens: int) -> types.GenerateContentResponseUsageMetadata:
    return types.GenerateContentResponseUsageMetadata(
        prompt_token_count=tokens // 2,
        candidates_token_count=tokens - tokens // 2,
        total_token_count=tokens,
    )


def respond(request: LlmRequest) -> LlmResponse:
    """Answer by the last user message; report N tokens."""
    words: list[str] = []
    for content in reversed(request.contents):
        if content.role == "user" and content.parts and content.parts[0].text:
            words = content.parts[0].text.split()
            break
    tokens = int(words[1]) if len(words) > 1 and words[1].isdigit() else DEFAULT_TOKENS
    last = request.contents[-1] if request.contents else None
    answered = bool(last and last.parts and last.parts[0].function_response)
    if words and words[0] == "tool" and not answered:
        part = types.Part(
            function_call=types.FunctionCall(name="get_weather", args={"city": "Paris"})
        )
        return LlmResponse(
            content=types.Content(role="model", parts=[part]), usage_metadata=_usage(tokens)
        )
    text = "sunny" if answered else "ok"
    return LlmResponse(
        content=types.Content(role="model", parts=[types.Part(text=text)]),
        usage_metadata=_usage(tokens),
    )


root_agent = LlmAgent(
    name="metered",
    description="Answers with a fixed token use per model response.",
    model=ScriptedModel(responses=[respond] * 100_000),
    instruction="You are a test agent.",
    tools=[get_weather],
)
