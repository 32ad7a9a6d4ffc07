"""Errors callers can act on; each `code` is part of the HTTP API.

AgentServiceError
    NotFoundError               AppNotFoundError, SessionNotFoundError, ArtifactNotFoundError
    ConflictError               AlreadyExistsError (= SessionExistsError), RunInProgressError,
                                StaleSessionError
    InvalidRequestError
    ModelError
    DatabaseUnavailableError
    PayloadTooLargeError
    LlmCallsLimitExceededError

The errors the seeds document as `ValueError`s (missing session, duplicate id, stale session)
also subclass `ValueError`, so code written against the seeds keeps working.
"""

from __future__ import annotations

from typing import ClassVar


class AgentServiceError(Exception):
    """Base of every error this package raises on purpose."""

    code: ClassVar[str] = "internal"

    @property
    def public_detail(self) -> str:
        """What a client may be told (a problem's `detail`); the message may say more."""
        return str(self)


class NotFoundError(AgentServiceError):
    """Something named in the request does not exist."""

    code = "not_found"


class ConflictError(AgentServiceError):
    """The request conflicts with the current state of a resource."""

    code = "conflict"


class InvalidRequestError(AgentServiceError, ValueError):
    """The caller's input is malformed or not allowed."""

    code = "invalid_request"


class AppNotFoundError(NotFoundError):
    """No app of that name is loaded."""

    code = "app_not_found"

    def __init__(self, app_name: str) -> None:
        super().__init__(f"App not found: {app_name}")
        self.app_name = app_name


class SessionNotFoundError(NotFoundError, ValueError):
    """The session does not exist (for that app and user)."""

    code = "session_not_found"

    def __init__(self, session_id: str) -> None:
        super().__init__(f"Session not found: {session_id}")
        self.session_id = session_id


class ArtifactNotFoundError(NotFoundError):
    """The artifact (or that version of it) does not exist."""

    code = "artifact_not_found"

    def __init__(self, filename: str, version: int | None = None) -> None:
        suffix = "" if version is None else f" (version {version})"
        super().__init__(f"Artifact not found: {filename}{suffix}")
        self.filename = filename
        self.version = version


class AlreadyExistsError(ConflictError, ValueError):
    """A session with that id already exists."""

    code = "session_exists"


SessionExistsError = AlreadyExistsError


class StaleSessionError(ConflictError, ValueError):
    """Another writer appended to the session since this copy was loaded."""

    code = "stale_session"


class RunInProgressError(ConflictError):
    """Another run is already in progress on this session."""

    code = "run_in_progress"


class ModelError(AgentServiceError):
    """The model backend failed or refused the request."""

    code = "model_error"

    def __init__(self, message: str, *, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status


class DatabaseUnavailableError(AgentServiceError):
    """The database could not be reached; the call wrote nothing.

    The message names the database (host, port, user, database) for operators and logs;
    `public_detail`, what HTTP clients see, names none of it.
    """

    code = "database_unavailable"

    def __init__(self, message: str, *, public_detail: str | None = None) -> None:
        super().__init__(message)
        self._public_detail = public_detail or "The database is unavailable; retry later."

    @property
    def public_detail(self) -> str:
        """The message without the database's location or credentials."""
        return self._public_detail


class PayloadTooLargeError(AgentServiceError):
    """The request body or frame exceeds the configured limit."""

    code = "payload_too_large"


class LlmCallsLimitExceededError(AgentServiceError):
    """An invocation made more model calls than `RunConfig.max_llm_calls` allows."""

    code = "llm_calls_limit_exceeded"


class ConfigError(AgentServiceError):
    """Settings or the agents directory are invalid."""

    code = "config_error"
