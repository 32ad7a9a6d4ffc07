"""LlmRequest: everything one model call receives."""

from __future__ import annotations

from typing import Any

from google.genai import types
from pydantic import BaseModel, ConfigDict, Field


class LlmRequest(BaseModel):
    """The contents, system instruction, tools and generation config for one model call."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: str | None = None
    """Model name, e.g. `gemini-2.5-flash`."""

    contents: list[types.Content] = Field(default_factory=list)
    """The conversation so far, oldest first."""

    config: types.GenerateContentConfig = Field(default_factory=types.GenerateContentConfig)
    """Generation config, system instruction and tool declarations."""

    live_connect_config: types.LiveConnectConfig = Field(default_factory=types.LiveConnectConfig)
    """Config for a live connection (run_live)."""

    tools_dict: dict[str, Any] = Field(default_factory=dict, exclude=True)
    """Tool name -> BaseTool, for executing the calls the model makes."""

    def append_instructions(self, instructions: list[str]) -> None:
        """Append paragraphs to the system instruction."""
        if not instructions:
            return
        text = "\n\n".join(instructions)
        current = self.config.system_instruction
        if current is None:
            self.config.system_instruction = text
        elif isinstance(current, str):
            self.config.system_instruction = current + "\n\n" + text
        else:
            self.config.system_instruction = _instruction_text(current) + "\n\n" + text

    def add_function_declaration(self, declaration: types.FunctionDeclaration, tool: Any) -> None:
        """Declare a function tool to the model and remember the tool that executes it."""
        if self.config.tools is None:
            self.config.tools = []
        target: types.Tool | None = None
        for existing in self.config.tools:
            if isinstance(existing, types.Tool) and existing.function_declarations is not None:
                target = existing
                break
        if target is None:
            target = types.Tool(function_declarations=[])
            self.config.tools.append(target)
        assert target.function_declarations is not None
        target.function_declarations.append(declaration)
        self.tools_dict[declaration.name or ""] = tool

    def system_instruction_text(self) -> str:
        """Return the system instruction as plain text ("" when unset)."""
        current = self.config.system_instruction
        if current is None:
            return ""
        return current if isinstance(current, str) else _instruction_text(current)


def _instruction_text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, types.Content):
        return "".join(p.text or "" for p in value.parts or [])
    if isinstance(value, types.Part):
        return value.text or ""
    if isinstance(value, list):
        return "".join(_instruction_text(v) for v in value)
    return str(value)
