"""LoopAgent: runs its sub-agents in order, repeatedly, until one escalates."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from app.agents.base_agent import BaseAgent
from app.agents.invocation_context import InvocationContext
from app.events.event import Event


class LoopAgent(BaseAgent):
    """Repeats its sub-agents until an event escalates or `max_iterations` is reached."""

    max_iterations: int | None = None
    """Stop after this many rounds (None: until escalation)."""

    async def _run_async_impl(self, ctx: InvocationContext) -> AsyncGenerator[Event, None]:
        if not self.sub_agents:
            return
        rounds = 0
        while self.max_iterations is None or rounds < self.max_iterations:
            rounds += 1
            for agent in self.sub_agents:
                escalated = False
                async for event in agent.run_async(ctx):
                    yield event
                    if event.actions.escalate:
                        escalated = True
                if escalated or ctx.end_invocation:
                    return
