"""LoopAgent: runs its sub-agents in order, repeatedly, until one escalates."""

from __future__ import annotations

from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

from app.agents.base_agent import BaseAgent, BaseAgentState
from app.agents.sequential_agent import start_index
from app.events.event import Event

if TYPE_CHECKING:
    from app.agents.invocation_context import InvocationContext


class LoopAgentState(BaseAgentState):
    """Checkpoint of a LoopAgent: the running sub-agent and the rounds already completed."""

    current_sub_agent: str = ""
    times_looped: int = 0


class LoopAgent(BaseAgent):
    """Repeats its sub-agents until an event escalates or `max_iterations` is reached.

    In a resumable app it records the running sub-agent and round before each sub-agent,
    and `end_of_agent` when it is done; a resumed invocation continues from there.
    """

    max_iterations: int | None = None
    """Stop after this many rounds (None: until escalation)."""

    async def _run_async_impl(self, ctx: InvocationContext) -> AsyncGenerator[Event, None]:
        if not self.sub_agents:
            return
        state = self._load_agent_state(ctx, LoopAgentState)
        rounds, first = 0, 0
        if state is not None:
            rounds = state.times_looped
            if state.current_sub_agent:
                first = start_index(self, state.current_sub_agent)
        resuming = state is not None  # its checkpoint event is already stored
        stop = paused = False
        while (self.max_iterations is None or rounds < self.max_iterations) and not stop:
            for agent in self.sub_agents[first:]:
                if ctx.is_resumable and not resuming:
                    checkpoint = LoopAgentState(current_sub_agent=agent.name, times_looped=rounds)
                    ctx.set_agent_state(self.name, agent_state=checkpoint)
                    yield self._create_agent_state_event(ctx)
                resuming = False
                async for event in agent.run_async(ctx):
                    yield event
                    stop = stop or bool(event.actions.escalate)
                    paused = paused or ctx.should_pause_invocation(event)
                if paused:
                    return
                if stop or ctx.end_invocation:
                    stop = True
                    break
            first = 0
            rounds += 1
            ctx.reset_sub_agent_states(self.name)  # the next round starts its sub-agents afresh
        if ctx.end_invocation:
            return
        if ctx.is_resumable:
            ctx.set_agent_state(self.name, end_of_agent=True)
            yield self._create_agent_state_event(ctx)
