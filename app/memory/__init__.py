"""Memory: long-term recall across sessions."""

from __future__ import annotations

from app.memory.base_memory_service import BaseMemoryService, MemoryEntry, SearchMemoryResponse
from app.memory.database_memory_service import DatabaseMemoryService
from app.memory.in_memory_memory_service import InMemoryMemoryService

__all__ = [
    "BaseMemoryService",
    "DatabaseMemoryService",
    "InMemoryMemoryService",
    "MemoryEntry",
    "SearchMemoryResponse",
]
