"""BaseArtifactService: versioned binary artifacts (files) attached to sessions or users."""

from __future__ import annotations

import abc
from typing import Any

from google.genai import types
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

USER_SCOPE_PREFIX = "user:"


class ArtifactVersion(BaseModel):
    """Metadata of one stored version of an artifact."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True)

    version: int
    """0-based, dense version number."""

    mime_type: str | None = None
    """MIME type of inline data (None for text artifacts)."""

    create_time: float
    """Seconds since the epoch."""

    size_bytes: int = 0
    """Size of the data (or UTF-8 text)."""

    custom_metadata: dict[str, Any] = Field(default_factory=dict)
    """Caller-supplied metadata."""


def is_user_scoped(filename: str) -> bool:
    """Return True for `user:` artifacts, shared by all of a user's sessions."""
    return filename.startswith(USER_SCOPE_PREFIX)


class BaseArtifactService(abc.ABC):
    """Stores artifact versions. A `user:` filename is scoped to the user, others to the session."""

    @abc.abstractmethod
    async def save_artifact(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str | None,
        filename: str,
        artifact: types.Part,
        custom_metadata: dict[str, Any] | None = None,
    ) -> int:
        """Store a new version and return its number (0 for the first).

        Raises:
            InvalidRequestError: the filename breaks `app.ids` rules (unusable over HTTP).
        """

    @abc.abstractmethod
    async def load_artifact(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str | None,
        filename: str,
        version: int | None = None,
    ) -> types.Part | None:
        """Return a version (the latest when `version` is None), or None."""

    @abc.abstractmethod
    async def list_artifact_keys(
        self, *, app_name: str, user_id: str, session_id: str | None
    ) -> list[str]:
        """Return the session's artifact names plus the user's `user:` ones, sorted."""

    @abc.abstractmethod
    async def delete_artifact(
        self, *, app_name: str, user_id: str, session_id: str | None, filename: str
    ) -> None:
        """Delete every version of an artifact."""

    @abc.abstractmethod
    async def list_versions(
        self, *, app_name: str, user_id: str, session_id: str | None, filename: str
    ) -> list[int]:
        """Return the stored version numbers, ascending."""

    @abc.abstractmethod
    async def list_artifact_versions(
        self, *, app_name: str, user_id: str, session_id: str | None, filename: str
    ) -> list[ArtifactVersion]:
        """Return metadata of every stored version, ascending."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release resources."""
