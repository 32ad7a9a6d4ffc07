"""LlmAgent (alias Agent): an agent driven by a language model, with tools and sub-agents."""

from __future__ import annotations

import inspect
from collections.abc import AsyncGenerator, Awaitable, Callable
from typing import Any, Literal

from google.genai import types
from pydantic import BaseModel, PrivateAttr

from app.agents._callbacks import Callbacks
from app.agents.base_agent import BaseAgent
from app.agents.invocation_context import InvocationContext
from app.agents.readonly_context import ReadonlyContext
from app.events.event import Event
from app.models.base_llm import BaseLlm
from app.models.registry import LLMRegistry
from app.tools.base_tool import BaseTool
from app.tools.function_tool import FunctionTool

DEFAULT_MODEL = "gemini-2.5-flash"

InstructionProvider = Callable[[ReadonlyContext], str | Awaitable[str]]
ToolUnion = BaseTool | Callable[..., Any]


class LlmAgent(BaseAgent):
    """An agent that asks a model what to do next: answer, call tools, or transfer."""

    model: str | BaseLlm = ""
    """A model name (`gemini-2.5-flash`) or a BaseLlm; empty inherits the parent's."""

    instruction: str | InstructionProvider = ""
    """System instruction; `{key}` is replaced by state values. A callable is used as is."""

    global_instruction: str | InstructionProvider = ""
    """On the root agent: an instruction for every agent in the tree."""

    tools: list[ToolUnion] = []
    """BaseTools or plain functions (wrapped in FunctionTool)."""

    generate_content_config: types.GenerateContentConfig | None = None
    """Temperature, safety settings, ... (not tools or system instruction)."""

    disallow_transfer_to_parent: bool = False
    """Never hand the conversation back to the parent agent."""

    disallow_transfer_to_peers: bool = False
    """Never hand the conversation to sibling agents."""

    include_contents: Literal["default", "none"] = "default"
    """`none`: the model sees only the current turn, not the history."""

    output_key: str | None = None
    """Store the agent's final text reply in this state key."""

    output_schema: type[BaseModel] | None = None
    """Validate the final reply as this model's JSON (stored under `output_key`)."""

    before_model_callback: Callbacks = None
    """`(callback_context, llm_request) -> LlmResponse | None`; a response skips the model."""

    after_model_callback: Callbacks = None
    """`(callback_context, llm_response) -> LlmResponse | None`; a response replaces it."""

    on_model_error_callback: Callbacks = None
    """`(callback_context, llm_request, error) -> LlmResponse | None`; a response recovers."""

    before_tool_callback: Callbacks = None
    """`(tool, args, tool_context) -> dict | None`; a dict skips the tool and is its result."""

    after_tool_callback: Callbacks = None
    """`(tool, args, tool_context, tool_response) -> dict | None`; a dict replaces the result."""

    on_tool_error_callback: Callbacks = None
    """`(tool, args, tool_context, error) -> dict | None`; a dict becomes the result."""

    _resolved_model: BaseLlm | None = PrivateAttr(default=None)
    _resolved_tools: list[BaseTool] | None = PrivateAttr(default=None)

    @property
    def canonical_model(self) -> BaseLlm:
        """The model instance this agent calls (resolved once)."""
        if self._resolved_model is None:
            self._resolved_model = self._resolve_model()
        return self._resolved_model

    def _resolve_model(self) -> BaseLlm:
        if isinstance(self.model, BaseLlm):
            return self.model
        if self.model:
            return LLMRegistry.new_llm(self.model)
        ancestor = self.parent_agent
        while ancestor is not None:
            if isinstance(ancestor, LlmAgent) and ancestor.model:
                return ancestor.canonical_model
            ancestor = ancestor.parent_agent
        return LLMRegistry.new_llm(DEFAULT_MODEL)

    def canonical_tools(self) -> list[BaseTool]:
        """The tools as BaseTool instances (functions wrapped once)."""
        if self._resolved_tools is None:
            self._resolved_tools = [
                tool if isinstance(tool, BaseTool) else FunctionTool(tool) for tool in self.tools
            ]
        return self._resolved_tools

    async def canonical_instruction(
        self, context: ReadonlyContext, instruction: str | InstructionProvider
    ) -> str:
        """Resolve an instruction: call a provider, or fill a template from state."""
        if callable(instruction):
            value = instruction(context)
            if inspect.isawaitable(value):
                value = await value
            return str(value)
        from app.flows.instructions import inject_state

        return await inject_state(instruction, context)

    async def _run_async_impl(self, ctx: InvocationContext) -> AsyncGenerator[Event, None]:
        from app.flows.llm_flow import run_llm_flow

        paused = False
        async for event in run_llm_flow(ctx):
            yield event
            paused = paused or ctx.should_pause_invocation(event)
        if paused or not ctx.is_resumable or ctx.end_invocation:
            return
        # Resumed with a long-running tool's call still unanswered: not finished yet.
        recent = ctx._get_events(current_invocation=True, current_branch=True)[-2:]
        if any(ctx.should_pause_invocation(event) for event in recent):
            return
        ctx.set_agent_state(self.name, end_of_agent=True)
        yield self._create_agent_state_event(ctx)

    async def _run_live_impl(self, ctx: InvocationContext) -> AsyncGenerator[Event, None]:
        from app.flows.live_flow import run_live_flow

        async for event in run_live_flow(ctx):
            yield event


Agent = LlmAgent
