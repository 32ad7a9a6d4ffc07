"""BaseTool: something the model can call."""

from __future__ import annotations

import abc
from typing import TYPE_CHECKING, Any

from google.genai import types

if TYPE_CHECKING:
    from app.models.llm_request import LlmRequest
    from app.tools.tool_context import ToolContext


class BaseTool(abc.ABC):
    """A tool: a declaration the model sees and code the runner executes."""

    def __init__(self, *, name: str, description: str, is_long_running: bool = False) -> None:
        self.name = name
        self.description = description
        self.is_long_running = is_long_running
        """The call returns at once; the real result arrives later as a function response."""

    def _get_declaration(self) -> types.FunctionDeclaration | None:
        """Return the function declaration for the model (None: not a function tool)."""
        return None

    @abc.abstractmethod
    async def run_async(self, *, args: dict[str, Any], tool_context: ToolContext) -> Any:
        """Execute the call and return its result (a dict, or anything JSON-able)."""

    async def process_llm_request(
        self, *, tool_context: ToolContext, llm_request: LlmRequest
    ) -> None:
        """Add this tool to the request (by default: its function declaration)."""
        declaration = self._get_declaration()
        if declaration is not None:
            llm_request.add_function_declaration(declaration, self)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"
