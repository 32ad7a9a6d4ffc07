"""SequentialAgent: runs its sub-agents one after another."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

from app.agents.base_agent import BaseAgent, BaseAgentState
from app.events.event import Event

if TYPE_CHECKING:
    from app.agents.invocation_context import InvocationContext

logger = logging.getLogger(__name__)


class SequentialAgentState(BaseAgentState):
    """Checkpoint of a SequentialAgent: the sub-agent that was running."""

    current_sub_agent: str = ""


def start_index(agent: BaseAgent, current: str) -> int:
    """Index of the sub-agent called `current` (0, with a warning, when it no longer exists)."""
    names = [sub.name for sub in agent.sub_agents]
    if current in names:
        return names.index(current)
    logger.warning("sub-agent %r of %r not found; starting from the first", current, agent.name)
    return 0


class SequentialAgent(BaseAgent):
    """Runs each sub-agent in order, in the same branch.

    In a resumable app it records which sub-agent runs (an `agent_state` event before each)
    and that it finished (`end_of_agent`); a resumed invocation restarts at that sub-agent.
    """

    async def _run_async_impl(self, ctx: InvocationContext) -> AsyncGenerator[Event, None]:
        if not self.sub_agents:
            return
        state = self._load_agent_state(ctx, SequentialAgentState)
        if state is None:
            first = 0
        elif not state.current_sub_agent:
            first = len(self.sub_agents)  # it had finished
        else:
            first = start_index(self, state.current_sub_agent)
        resuming = state is not None  # its checkpoint event is already stored
        for agent in self.sub_agents[first:]:
            if ctx.is_resumable and not resuming:
                checkpoint = SequentialAgentState(current_sub_agent=agent.name)
                ctx.set_agent_state(self.name, agent_state=checkpoint)
                yield self._create_agent_state_event(ctx)
            resuming = False
            paused = False
            async for event in agent.run_async(ctx):
                yield event
                paused = paused or ctx.should_pause_invocation(event)
            if paused or ctx.end_invocation:
                return
        if ctx.is_resumable:
            ctx.set_agent_state(self.name, end_of_agent=True)
            yield self._create_agent_state_event(ctx)

    async def _run_live_impl(self, ctx: InvocationContext) -> AsyncGenerator[Event, None]:
        for agent in self.sub_agents:
            async for event in agent.run_live(ctx):
                yield event
