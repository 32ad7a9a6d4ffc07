"""Artifacts: versioned files produced or consumed by agents."""

from __future__ import annotations

from app.artifacts.base_artifact_service import ArtifactVersion, BaseArtifactService
from app.artifacts.database_artifact_service import DatabaseArtifactService
from app.artifacts.in_memory_artifact_service import InMemoryArtifactService

__all__ = [
    "ArtifactVersion",
    "BaseArtifactService",
    "DatabaseArtifactService",
    "InMemoryArtifactService",
]
