"""preload_memory: put the memories relevant to the user's message into the instruction."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from app.memory.base_memory_service import MemoryEntry
from app.tools.base_tool import BaseTool

if TYPE_CHECKING:
    from app.models.llm_request import LlmRequest
    from app.tools.tool_context import ToolContext

PAST_CONVERSATIONS_START = "<PAST_CONVERSATIONS>"
PAST_CONVERSATIONS_END = "</PAST_CONVERSATIONS>"


class PreloadMemoryTool(BaseTool):
    """Before each model call, searches memory with the user's message and adds what it finds.

    The model never calls it (it declares no function); only text memories are used.
    """

    def __init__(self) -> None:
        super().__init__(name="preload_memory", description="preload_memory")

    async def run_async(self, *, args: dict[str, Any], tool_context: ToolContext) -> Any:
        """Not callable by the model: it declares no function."""
        return {"error": "preload_memory is not a function; memories are already provided."}

    async def process_llm_request(
        self, *, tool_context: ToolContext, llm_request: LlmRequest
    ) -> None:
        """Append the memories matching the user's current message to the instruction."""
        content = tool_context.user_content
        query = " ".join(p.text for p in (content.parts or []) if p.text) if content else ""
        if not query.strip():
            return
        found = await tool_context.search_memory(query)
        lines = [line for memory in found.memories for line in _lines(memory)]
        if not lines:
            return
        llm_request.append_instructions(
            [
                "The following content is from your previous conversations with the user. "
                "It may be useful for answering the user's current query.\n"
                f"{PAST_CONVERSATIONS_START}\n" + "\n".join(lines) + f"\n{PAST_CONVERSATIONS_END}"
            ]
        )


def _lines(memory: MemoryEntry) -> list[str]:
    text = " ".join(p.text for p in (memory.content.parts or []) if p.text).strip()
    if not text:
        return []
    lines = [f"Time: {memory.timestamp}"] if memory.timestamp else []
    lines.append(f"{memory.author}: {text}" if memory.author else text)
    return lines


preload_memory_tool = PreloadMemoryTool()
"""A ready `PreloadMemoryTool` to put in an agent's `tools`."""
