"""load_memory: a tool the model calls to search the user's long-term memory."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, Field

from app.memory.base_memory_service import MemoryEntry
from app.tools.function_tool import FunctionTool
from app.tools.tool_context import ToolContext

if TYPE_CHECKING:
    from app.models.llm_request import LlmRequest

MEMORY_INSTRUCTION = (
    "You have memory of past conversations with this user. When a question needs something "
    "from earlier conversations, call the load_memory function with a short search query."
)
"""What `LoadMemoryTool` adds to the system instruction."""


class LoadMemoryResponse(BaseModel):
    """What `load_memory` returns: the memories matching the query, best first."""

    memories: list[MemoryEntry] = Field(default_factory=list)


async def load_memory(query: str, tool_context: ToolContext) -> LoadMemoryResponse:
    """Search the memory of past conversations with the current user.

    Args:
        query: Words to look for in earlier conversations, e.g. "favourite drink".
    """
    found = await tool_context.search_memory(query)
    return LoadMemoryResponse(memories=found.memories)


class LoadMemoryTool(FunctionTool):
    """Lets the model search the user's memory; tells the model that it has one."""

    def __init__(self) -> None:
        super().__init__(load_memory)

    def _response(self, result: Any) -> Any:
        """Send the memories back to the model as compact JSON (no nulls)."""
        if isinstance(result, LoadMemoryResponse):
            return result.model_dump(mode="json", by_alias=True, exclude_none=True)
        return super()._response(result)

    async def process_llm_request(
        self, *, tool_context: ToolContext, llm_request: LlmRequest
    ) -> None:
        """Declare the function and say in the instruction when to use it."""
        await super().process_llm_request(tool_context=tool_context, llm_request=llm_request)
        llm_request.append_instructions([MEMORY_INSTRUCTION])


load_memory_tool = LoadMemoryTool()
"""A ready `LoadMemoryTool` to put in an agent's `tools`."""
