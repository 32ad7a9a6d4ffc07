"""The `burst` app: a model that streams a large answer without ever awaiting between chunks.

burst N -> under token streaming, N partial chunks of 8 KiB each, made one at a time (the
           model itself holds no more than one chunk), then a short final response.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from google.genai import types

from app.agents import LlmAgent
from app.models import BaseLlm, LlmRequest, LlmResponse

WORD_BYTES = 8192


def _text(text: str) -> types.Content:
    return types.Content(role="model", parts=[types.Part(text=text)])


class BurstLlm(BaseLlm):
    """Yields `burst N`'s chunks back to back, as a client library with a full buffer would."""

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        """Yield N chunks (when streaming), then a final text naming how many."""
        last = llm_request.contents[-1] if llm_request.contents else None
        text = (last.parts[0].text or "") if last and last.parts else ""
        words = text.split()
        count = int(words[1]) if len(words) > 1 and words[1].isdigit() else 1
        if stream:
            for index in range(count):
                word = f"{index:07d} " + "w" * (WORD_BYTES - 9) + " "
                yield LlmResponse(content=_text(word), partial=True)
        yield LlmResponse(content=_text(f"{count} words"))


root_agent = LlmAgent(
    name="burst",
    description="Streams N words of 8 KiB without awaiting between chunks.",
    model=BurstLlm(model="burst"),
    instruction="You are a test agent.",
)
