"""SequentialAgent: runs its sub-agents one after another."""

from __future__ import annotations

from collections.abc import AsyncGenerator

from app.agents.base_agent import BaseAgent
from app.agents.invocation_context import InvocationContext
from app.events.event import Event


class SequentialAgent(BaseAgent):
    """Runs each sub-agent in order, in the same branch."""

    async def _run_async_impl(self, ctx: InvocationContext) -> AsyncGenerator[Event, None]:
        for agent in self.sub_agents:
            async for event in agent.run_async(ctx):
                yield event
            if ctx.end_invocation:
                return

    async def _run_live_impl(self, ctx: InvocationContext) -> AsyncGenerator[Event, None]:
        for agent in self.sub_agents:
            async for event in agent.run_live(ctx):
                yield event
