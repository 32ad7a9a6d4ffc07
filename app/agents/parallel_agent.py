"""ParallelAgent: runs its sub-agents concurrently, each in an isolated branch."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncGenerator
from typing import TYPE_CHECKING

from app.agents.base_agent import BaseAgent, BaseAgentState
from app.events.event import Event

if TYPE_CHECKING:
    from app.agents.invocation_context import InvocationContext

_DONE = object()


class ParallelAgent(BaseAgent):
    """Runs every sub-agent at once; each sees only its own branch's history.

    Events are yielded as they come. A branch waits until the runner has stored its event
    before it continues, so its next model call sees it.

    In a resumable app it records that it started (an empty `agent_state`) and, once every
    sub-agent finished, `end_of_agent`; a resumed invocation re-runs only the unfinished ones.
    """

    async def _run_async_impl(self, ctx: InvocationContext) -> AsyncGenerator[Event, None]:
        if not self.sub_agents:
            return
        if ctx.is_resumable and self._load_agent_state(ctx, BaseAgentState) is None:
            ctx.set_agent_state(self.name, agent_state=BaseAgentState())
            yield self._create_agent_state_event(ctx)
        paused = False
        async for event in self._merge_branches(ctx):
            yield event
            paused = paused or ctx.should_pause_invocation(event)
        if paused or not ctx.is_resumable:
            return
        if all(ctx.end_of_agents.get(agent.name) for agent in self.sub_agents):
            ctx.set_agent_state(self.name, end_of_agent=True)
            yield self._create_agent_state_event(ctx)

    async def _merge_branches(self, ctx: InvocationContext) -> AsyncGenerator[Event, None]:
        """Run the unfinished sub-agents concurrently; yield their events as they come."""
        agents = [a for a in self.sub_agents if not ctx.end_of_agents.get(a.name)]
        if not agents:
            return
        queue: asyncio.Queue[tuple[object, asyncio.Future[None] | None]] = asyncio.Queue()
        base = f"{ctx.branch}.{self.name}" if ctx.branch else self.name

        async def run_branch(agent: BaseAgent) -> None:
            branch_ctx = ctx.for_agent(agent, branch=f"{base}.{agent.name}")
            try:
                async with contextlib.aclosing(agent.run_async(branch_ctx)) as events:
                    async for event in events:
                        processed = asyncio.get_running_loop().create_future()
                        await queue.put((event, processed))
                        await processed
            except Exception as exc:  # noqa: BLE001 - re-raised by the merging loop
                queue.put_nowait((exc, None))
            else:
                queue.put_nowait((_DONE, None))

        tasks = [asyncio.create_task(run_branch(agent)) for agent in agents]
        remaining = len(tasks)
        try:
            while remaining:
                item, processed = await queue.get()
                if item is _DONE:
                    remaining -= 1
                    continue
                if isinstance(item, Exception):
                    raise item  # the finally below cancels the other branches
                assert isinstance(item, Event) and processed is not None
                yield item
                processed.set_result(None)
        finally:
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)
