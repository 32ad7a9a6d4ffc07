"""Tools: functions the model can call."""

from __future__ import annotations

# Load the agents package first: ToolContext extends agents.CallbackContext, and importing
# it from here first would otherwise re-enter this package half-initialized.
import app.agents.callback_context  # noqa: F401
from app.tools.base_tool import BaseTool
from app.tools.function_tool import FunctionTool, LongRunningFunctionTool
from app.tools.load_memory_tool import (
    LoadMemoryResponse,
    LoadMemoryTool,
    load_memory,
    load_memory_tool,
)
from app.tools.preload_memory_tool import PreloadMemoryTool, preload_memory_tool
from app.tools.tool_context import ToolContext
from app.tools.transfer_to_agent_tool import TransferToAgentTool

__all__ = [
    "BaseTool",
    "FunctionTool",
    "LoadMemoryResponse",
    "LoadMemoryTool",
    "LongRunningFunctionTool",
    "PreloadMemoryTool",
    "ToolContext",
    "TransferToAgentTool",
    "load_memory",
    "load_memory_tool",
    "preload_memory_tool",
]
