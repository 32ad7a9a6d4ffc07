"""ReadonlyContext: what instruction providers may read."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

from google.genai import types

if TYPE_CHECKING:
    from app.agents.invocation_context import InvocationContext


class ReadonlyContext:
    """A read-only view of the invocation."""

    def __init__(self, invocation_context: InvocationContext) -> None:
        self._invocation_context = invocation_context

    @property
    def invocation_id(self) -> str:
        """The current invocation id."""
        return self._invocation_context.invocation_id

    @property
    def agent_name(self) -> str:
        """The name of the agent running."""
        return self._invocation_context.agent.name

    @property
    def app_name(self) -> str:
        """The session's app."""
        return self._invocation_context.app_name

    @property
    def user_id(self) -> str:
        """The session's user."""
        return self._invocation_context.user_id

    @property
    def session(self) -> Any:
        """The session (treat as read-only)."""
        return self._invocation_context.session

    @property
    def user_content(self) -> types.Content | None:
        """The user message that started the invocation."""
        return self._invocation_context.user_content

    @property
    def state(self) -> Mapping[str, Any]:
        """The session state, read-only."""
        return MappingProxyType(self._invocation_context.session.state)
