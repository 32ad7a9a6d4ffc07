"""BaseAgent: the node of an agent tree; subclasses implement `_run_async_impl`."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from typing import TYPE_CHECKING, Any, TypeVar

from google.genai import types
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from app.agents._callbacks import Callbacks, run_callbacks
from app.agents.callback_context import CallbackContext
from app.events.event import Event
from app.events.event_actions import EventActions
from app.observability import tracing

if TYPE_CHECKING:
    from app.agents.invocation_context import InvocationContext


class BaseAgentState(BaseModel):
    """An agent's checkpoint in a resumable invocation; workflow agents extend it."""

    model_config = ConfigDict(extra="forbid")


AgentState = TypeVar("AgentState", bound=BaseAgentState)


class BaseAgent(BaseModel):
    """An agent: a name, a description, sub-agents, and before/after callbacks."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    name: str
    """Unique in the tree; a Python identifier, and not `user`."""

    description: str = ""
    """What the agent does; other agents read it to decide on a transfer."""

    sub_agents: list[BaseAgent] = Field(default_factory=list)
    """Children; each agent may have only one parent."""

    before_agent_callback: Callbacks = None
    """`(callback_context) -> Content | None`; content skips the agent and becomes its reply."""

    after_agent_callback: Callbacks = None
    """`(callback_context) -> Content | None`; content is appended as a final reply."""

    _parent_agent: BaseAgent | None = PrivateAttr(default=None)

    @field_validator("name")
    @classmethod
    def _validate_name(cls, value: str) -> str:
        if not value.isidentifier():
            raise ValueError(
                f"Invalid agent name {value!r}: it must be a Python identifier "
                "(letters, digits and underscores, not starting with a digit)."
            )
        if value == "user":
            raise ValueError("An agent cannot be named 'user': it is reserved for user events.")
        return value

    def model_post_init(self, __context: Any) -> None:
        """Link sub-agents to this parent."""
        for child in self.sub_agents:
            if child._parent_agent is not None and child._parent_agent is not self:
                raise ValueError(
                    f"Agent {child.name!r} already has parent {child._parent_agent.name!r}; "
                    f"it cannot also be a sub-agent of {self.name!r}."
                )
            child._parent_agent = self
        names = [c.name for c in self.sub_agents]
        duplicates = {n for n in names if names.count(n) > 1}
        if duplicates:
            raise ValueError(f"Duplicate sub-agent names under {self.name!r}: {sorted(duplicates)}")

    @property
    def parent_agent(self) -> BaseAgent | None:
        """The agent this one is a sub-agent of (set when the parent is built)."""
        return self._parent_agent

    @parent_agent.setter
    def parent_agent(self, parent: BaseAgent | None) -> None:
        if parent is not None and not isinstance(parent, BaseAgent):
            raise TypeError(f"parent_agent must be an agent or None, not {type(parent).__name__}")
        self._parent_agent = parent

    @property
    def root_agent(self) -> BaseAgent:
        """The root of the tree."""
        agent = self
        while agent._parent_agent is not None:
            agent = agent._parent_agent
        return agent

    def find_agent(self, name: str) -> BaseAgent | None:
        """Return this agent or a descendant called `name`."""
        if self.name == name:
            return self
        return self.find_sub_agent(name)

    def find_sub_agent(self, name: str) -> BaseAgent | None:
        """Return a descendant called `name`."""
        for child in self.sub_agents:
            found = child.find_agent(name)
            if found is not None:
                return found
        return None

    def _load_agent_state(
        self, ctx: InvocationContext, state_type: type[AgentState]
    ) -> AgentState | None:
        """Return this agent's checkpoint in `ctx`, as `state_type`, or None."""
        raw = ctx.agent_states.get(self.name)
        return None if raw is None else state_type.model_validate(raw)

    def _create_agent_state_event(self, ctx: InvocationContext) -> Event:
        """An event recording this agent's checkpoint (or its end) as `ctx` holds it."""
        actions = EventActions()
        state = ctx.agent_states.get(self.name)
        if state is not None:
            actions.agent_state = state
        if ctx.end_of_agents.get(self.name):
            actions.end_of_agent = True
        return Event(
            invocation_id=ctx.invocation_id, author=self.name, branch=ctx.branch, actions=actions
        )

    async def run_async(self, parent_context: InvocationContext) -> AsyncGenerator[Event, None]:
        """Run the agent: callbacks around `_run_async_impl`."""
        async for event in self._run_with_callbacks(parent_context, self._run_async_impl):
            yield event

    async def run_live(self, parent_context: InvocationContext) -> AsyncGenerator[Event, None]:
        """Run the agent in live mode: callbacks around `_run_live_impl`."""
        async for event in self._run_with_callbacks(parent_context, self._run_live_impl):
            yield event

    async def _run_with_callbacks(
        self,
        parent_context: InvocationContext,
        impl: Callable[[InvocationContext], AsyncGenerator[Event, None]],
    ) -> AsyncGenerator[Event, None]:
        ctx = parent_context.for_agent(self)
        span = tracing.invoke_agent(
            self.name, self.description, ctx.session.id, parent_context.trace_span
        )
        if span is not None:
            ctx.trace_span = span
        error: Exception | None = None
        try:
            event = await self._before_agent(ctx)
            if event is not None:
                yield event
            if ctx.end_invocation:
                return
            async for event in impl(ctx):
                yield event
            if ctx.end_invocation:
                return
            event = await self._after_agent(ctx)
            if event is not None:
                yield event
        except Exception as exc:
            error = exc
            if ctx.plugin_manager.has("on_agent_error_callback"):
                await ctx.plugin_manager.run_on_agent_error_callback(
                    agent=self, callback_context=CallbackContext(ctx), error=exc
                )
            raise
        finally:
            if span is not None:
                tracing.end_span(span, error)

    async def _run_async_impl(self, ctx: InvocationContext) -> AsyncGenerator[Event, None]:
        """Produce the agent's events. Subclasses override this."""
        raise NotImplementedError(f"{type(self).__name__} does not implement run_async.")
        yield  # pragma: no cover - makes this an async generator

    async def _run_live_impl(self, ctx: InvocationContext) -> AsyncGenerator[Event, None]:
        """Produce the agent's events in live mode. Subclasses override this."""
        raise NotImplementedError(f"{type(self).__name__} does not support run_live.")
        yield  # pragma: no cover

    async def _before_agent(self, ctx: InvocationContext) -> Event | None:
        callback_context = CallbackContext(ctx)
        content = await ctx.plugin_manager.run(
            "before_agent_callback", agent=self, callback_context=callback_context
        )
        if content is None:
            content = await run_callbacks(
                self.before_agent_callback, callback_context=callback_context
            )
        if content is not None:
            ctx.end_invocation = True
        return self._callback_event(ctx, callback_context, content)

    async def _after_agent(self, ctx: InvocationContext) -> Event | None:
        callback_context = CallbackContext(ctx)
        content = await ctx.plugin_manager.run(
            "after_agent_callback", agent=self, callback_context=callback_context
        )
        if content is None:
            content = await run_callbacks(
                self.after_agent_callback, callback_context=callback_context
            )
        return self._callback_event(ctx, callback_context, content)

    def _callback_event(
        self, ctx: InvocationContext, callback_context: CallbackContext, content: Any
    ) -> Event | None:
        """An event for a callback's reply or state change (None when it did neither)."""
        if content is None and not callback_context.actions.state_delta:
            return None
        if isinstance(content, str):
            content = types.Content(role="model", parts=[types.Part(text=content)])
        return Event(
            invocation_id=ctx.invocation_id,
            author=self.name,
            branch=ctx.branch,
            content=content,
            actions=callback_context.actions,
        )
