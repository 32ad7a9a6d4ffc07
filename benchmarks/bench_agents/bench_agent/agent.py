"""Benchmark agent: an LlmAgent with a zero-latency mock model, as in the ADK bench.

Mirrors /work/shared/bench-adk/adk_app/bench_agent/agent.py; the model picks its behaviour
from the text of the latest user message:
  "chat ..."      -> one final text "ok"                        (1 model event)
  "tool ..."      -> get_weather(city="Paris"), then final text  (call, response, text)
  "stream N ..."  -> with token streaming: N partial chunks then the aggregated final text;
                     without streaming just the final text. Awaits between chunks (like a
                     network stream); "streamburst N" does not.
Anything else behaves like "chat". Every final response reports usage metadata.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator

from google.genai import types

from app.agents import LlmAgent
from app.models import BaseLlm, LlmRequest, LlmResponse


def get_weather(city: str) -> dict[str, object]:
    """Returns the current weather for a city."""
    return {"city": city, "forecast": "sunny", "temperature_c": 21}


def _text(text: str) -> types.Content:
    return types.Content(role="model", parts=[types.Part(text=text)])


_USAGE = types.GenerateContentResponseUsageMetadata(
    prompt_token_count=10, candidates_token_count=5, total_token_count=15
)


class MockLlm(BaseLlm):
    """Zero-latency in-process model; behaviour chosen by the user message."""

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        """Answer as the ADK bench mock does."""
        contents = llm_request.contents or []
        last = contents[-1] if contents else None
        parts = (last.parts or []) if last is not None else []

        # Second model call of the "tool" workload: the last content is the tool result.
        fr = next((p.function_response for p in parts if p.function_response), None)
        if fr is not None:
            resp = fr.response or {}
            yield LlmResponse(
                content=_text(
                    f"The weather in {resp.get('city', '?')} is"
                    f" {resp.get('forecast', '?')}, {resp.get('temperature_c', '?')}C."
                ),
                usage_metadata=_USAGE,
            )
            return

        msg = "".join(p.text or "" for p in parts).strip()

        if msg.startswith("tool"):
            yield LlmResponse(
                content=types.Content(
                    role="model",
                    parts=[
                        types.Part(
                            function_call=types.FunctionCall(
                                name="get_weather", args={"city": "Paris"}
                            )
                        )
                    ],
                ),
                usage_metadata=_USAGE,
            )
            return

        if msg.startswith("stream"):
            cooperative = not msg.startswith("streamburst")
            words = msg.split()
            try:
                n = int(words[1]) if len(words) > 1 else 10
            except ValueError:
                n = 10
            chunks = [f"tok{i} " for i in range(n)]
            if stream:
                for c in chunks:
                    yield LlmResponse(content=_text(c), partial=True)
                    if cooperative:
                        await asyncio.sleep(0)
            yield LlmResponse(content=_text("".join(chunks)), partial=False, usage_metadata=_USAGE)
            return

        yield LlmResponse(content=_text("ok"), usage_metadata=_USAGE)


root_agent = LlmAgent(
    name="bench_agent",
    model=MockLlm(model="mock-bench"),
    instruction="You are a benchmark agent.",
    tools=[get_weather],
)
