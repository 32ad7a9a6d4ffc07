"""Sessions: conversations, their state and the services that store them."""

from __future__ import annotations

from app.errors import AlreadyExistsError, SessionNotFoundError, StaleSessionError
from app.sessions.base_session_service import (
    BaseSessionService,
    GetSessionConfig,
    ListSessionsResponse,
)
from app.sessions.database_session_service import DatabaseSessionService
from app.sessions.in_memory_session_service import InMemorySessionService
from app.sessions.session import Session
from app.sessions.state import State

__all__ = [
    "AlreadyExistsError",
    "BaseSessionService",
    "DatabaseSessionService",
    "GetSessionConfig",
    "InMemorySessionService",
    "ListSessionsResponse",
    "Session",
    "SessionNotFoundError",
    "StaleSessionError",
    "State",
]
