"""BaseMemoryService: long-term memory searchable across a user's sessions."""

from __future__ import annotations

import abc

from google.genai import types
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from app.sessions.session import Session


class MemoryEntry(BaseModel):
    """One remembered piece of a past conversation."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    content: types.Content
    author: str | None = None
    timestamp: str | None = None
    """ISO 8601 time of the original event."""
    id: str | None = None


class SearchMemoryResponse(BaseModel):
    """The memories matching a query, best first."""

    memories: list[MemoryEntry] = Field(default_factory=list)


class BaseMemoryService(abc.ABC):
    """Ingests sessions and answers searches."""

    @abc.abstractmethod
    async def add_session_to_memory(self, session: Session) -> None:
        """Remember the session's events."""

    @abc.abstractmethod
    async def search_memory(
        self, *, app_name: str, user_id: str, query: str
    ) -> SearchMemoryResponse:
        """Return memories of this user relevant to `query`."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""
