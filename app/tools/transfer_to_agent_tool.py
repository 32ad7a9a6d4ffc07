"""transfer_to_agent: the tool an LlmAgent uses to hand the conversation to another agent."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from google.genai import types

from app.tools.base_tool import BaseTool

if TYPE_CHECKING:
    from app.tools.tool_context import ToolContext

TRANSFER_TO_AGENT = "transfer_to_agent"


class TransferToAgentTool(BaseTool):
    """Declares `transfer_to_agent(agent_name)` with the allowed targets as an enum."""

    def __init__(self, agent_names: list[str]) -> None:
        super().__init__(
            name=TRANSFER_TO_AGENT,
            description=(
                "Transfer the question to another agent. Use it when another agent is better "
                "suited to answer, as described in the instructions."
            ),
        )
        self.agent_names = agent_names

    def _get_declaration(self) -> types.FunctionDeclaration:
        return types.FunctionDeclaration(
            name=self.name,
            description=self.description,
            parameters_json_schema={
                "type": "object",
                "properties": {
                    "agent_name": {
                        "type": "string",
                        "enum": self.agent_names,
                        "description": "The agent to transfer to.",
                    }
                },
                "required": ["agent_name"],
            },
        )

    async def run_async(self, *, args: dict[str, Any], tool_context: ToolContext) -> Any:
        """Record the transfer; the flow runs the target agent after the response."""
        name = args.get("agent_name")
        if name not in self.agent_names:
            return {"error": f"Unknown agent {name!r}; choose one of {self.agent_names}."}
        tool_context.actions.transfer_to_agent = name
        return {"transferred_to": name}
