"""ToolContext: what a tool may read and change while it runs."""

from __future__ import annotations

from typing import TYPE_CHECKING

# ToolContext extends CallbackContext, as the seeds define it; callback_context is a leaf
# module of `agents` that imports only from lower layers.
from app.agents.callback_context import CallbackContext
from app.events.event_actions import EventActions

if TYPE_CHECKING:
    from app.agents.invocation_context import InvocationContext
    from app.memory.base_memory_service import SearchMemoryResponse


class ToolContext(CallbackContext):
    """State, artifacts, memory and actions for one function call."""

    def __init__(
        self,
        invocation_context: InvocationContext,
        *,
        function_call_id: str | None = None,
        event_actions: EventActions | None = None,
    ) -> None:
        super().__init__(invocation_context, event_actions=event_actions)
        self.function_call_id = function_call_id
        """Id of the function call being executed."""

    async def search_memory(self, query: str) -> SearchMemoryResponse:
        """Search the user's long-term memory."""
        service = self._invocation_context.memory_service
        if service is None:
            raise ValueError("No memory service is configured.")
        return await service.search_memory(
            app_name=self.app_name, user_id=self.user_id, query=query
        )
