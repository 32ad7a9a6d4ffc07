"""Benchmark app `burst` (benchmarks/stalled_reader.py): a large answer, chunks back to back.

"burst N SIZE" -> under token streaming, N partial chunks of SIZE bytes yielded without
                  awaiting in between (a client library with the answer already buffered),
                  then a short final text. Each chunk is made when it is yielded, so the
                  model holds one chunk, never the answer: what the server's memory grows by
                  is what it buffers for its readers.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator

from google.genai import types

from app.agents import LlmAgent
from app.models import BaseLlm, LlmRequest, LlmResponse


def _text(text: str) -> types.Content:
    return types.Content(role="model", parts=[types.Part(text=text)])


class BurstLlm(BaseLlm):
    """Yields `burst N SIZE`'s chunks back to back, then `N chunks`."""

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        """Answer `burst N SIZE` (defaults: 1 chunk of 8 KiB)."""
        last = llm_request.contents[-1] if llm_request.contents else None
        words = ((last.parts[0].text or "") if last and last.parts else "").split()
        numbers = [int(w) for w in words[1:3] if w.isdigit()]
        count = numbers[0] if numbers else 1
        size = numbers[1] if len(numbers) > 1 else 8192
        if stream:
            for index in range(count):
                yield LlmResponse(
                    content=_text(f"{index:09d} " + "w" * max(size - 10, 0)), partial=True
                )
        yield LlmResponse(content=_text(f"{count} chunks"))


root_agent = LlmAgent(
    name="burst",
    description="Streams N chunks of SIZE bytes without awaiting between them.",
    model=BurstLlm(model="burst"),
    instruction="You are a benchmark agent.",
)
