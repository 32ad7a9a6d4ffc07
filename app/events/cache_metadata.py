"""CacheMetadata: which context cache (if any) served a model response."""

from __future__ import annotations

import time

from pydantic import BaseModel, ConfigDict, Field, model_validator

_EXPIRY_MARGIN_SECONDS = 120


class CacheMetadata(BaseModel):
    """A context cache's identity and use, or only the fingerprint of a cacheable prefix.

    Either all of `cache_name`, `expire_time` and `invocations_used` are set (an active
    cache) or none is (fingerprint only).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    cache_name: str | None = None
    """Resource name of the cached content."""

    expire_time: float | None = None
    """When the cache expires, seconds since the epoch."""

    fingerprint: str
    """Hash of the cacheable contents (instruction, tools, leading contents)."""

    invocations_used: int | None = Field(default=None, ge=0)
    """Invocations that used this cache."""

    contents_count: int = Field(ge=0)
    """Contents in the cache (or in the fingerprinted prefix)."""

    created_at: float | None = None
    """When the cache was created, seconds since the epoch."""

    @model_validator(mode="after")
    def _active_fields_together(self) -> CacheMetadata:
        active = {v is None for v in (self.cache_name, self.expire_time, self.invocations_used)}
        if len(active) > 1:
            raise ValueError(
                "cache_name, expire_time and invocations_used must be set together "
                "(an active cache) or all be None (fingerprint only)"
            )
        return self

    @property
    def expire_soon(self) -> bool:
        """True when the cache expires within two minutes."""
        if self.expire_time is None:
            return False
        return time.time() > self.expire_time - _EXPIRY_MARGIN_SECONDS
