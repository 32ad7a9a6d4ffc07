"""ContextCacheConfig: the reference runtime's explicit context-caching settings."""

from __future__ import annotations

from google.genai import types
from pydantic import BaseModel, ConfigDict, Field


class ContextCacheConfig(BaseModel):
    """Explicit context caching for an app's model calls.

    Accepted and carried on the InvocationContext so code written for the reference runs;
    this runtime does not create explicit caches (Gemini's implicit caching still applies).
    """

    model_config = ConfigDict(extra="forbid")

    cache_intervals: int = Field(default=10, ge=1, le=100)
    """Invocations that may reuse one cache before it is refreshed."""

    ttl_seconds: int = Field(default=1800, gt=0)
    """Cache lifetime."""

    min_tokens: int = Field(default=0, ge=0)
    """Prior-request tokens needed before caching is worth it."""

    create_http_options: types.HttpOptions | None = None
    """HTTP options for the cache-creation call."""

    @property
    def ttl_string(self) -> str:
        """The TTL as the API spells it (`"1800s"`)."""
        return f"{self.ttl_seconds}s"
