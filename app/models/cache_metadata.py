"""CacheMetadata under the models package, where the reference runtime keeps it."""

from __future__ import annotations

from app.events.cache_metadata import CacheMetadata

__all__ = ["CacheMetadata"]
