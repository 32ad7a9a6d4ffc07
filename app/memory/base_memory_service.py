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


DEFAULT_SEARCH_LIMIT = 10
"""How many memories `search_memory` returns at most, unless asked for another number."""


class BaseMemoryService(abc.ABC):
    """Ingests sessions and answers searches."""

    @abc.abstractmethod
    async def add_session_to_memory(self, session: Session) -> None:
        """Remember the session's events; an event already remembered is not added again."""

    @abc.abstractmethod
    async def search_memory(
        self, *, app_name: str, user_id: str, query: str, limit: int = DEFAULT_SEARCH_LIMIT
    ) -> SearchMemoryResponse:
        """Return at most `limit` memories of this user and app relevant to `query`, best first."""

    async def delete_memory(
        self, *, app_name: str, user_id: str, session_id: str | None = None
    ) -> int:
        """Forget what was remembered of this user (only of one session, when given).

        Returns the number of memories removed.
        """
        raise NotImplementedError(f"{type(self).__name__} cannot forget memories.")

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""
