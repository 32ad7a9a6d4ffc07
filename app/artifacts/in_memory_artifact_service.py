"""InMemoryArtifactService: artifact versions in a dict."""

from __future__ import annotations

import threading
import time
from typing import Any

from google.genai import types

from app.artifacts.base_artifact_service import ArtifactVersion, BaseArtifactService, is_user_scoped
from app.ids import check_artifact_name

_Key = tuple[str, str, str | None, str]


class InMemoryArtifactService(BaseArtifactService):
    """Keeps artifacts in process memory; lost on restart. Thread-safe."""

    def __init__(self) -> None:
        self._store: dict[_Key, list[tuple[types.Part, ArtifactVersion]]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(app_name: str, user_id: str, session_id: str | None, filename: str) -> _Key:
        return (app_name, user_id, None if is_user_scoped(filename) else session_id, filename)

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
        """Store a new version; see `BaseArtifactService.save_artifact`."""
        check_artifact_name(filename)
        if artifact.inline_data is None and artifact.text is None:
            raise ValueError("An artifact must carry inline_data or text.")
        if artifact.inline_data is not None:
            mime = artifact.inline_data.mime_type
            size = len(artifact.inline_data.data or b"")
        else:
            mime, size = None, len((artifact.text or "").encode())
        key = self._key(app_name, user_id, session_id, filename)
        with self._lock:
            versions = self._store.setdefault(key, [])
            meta = ArtifactVersion(
                version=len(versions),
                mime_type=mime,
                create_time=time.time(),
                size_bytes=size,
                custom_metadata=dict(custom_metadata or {}),
            )
            # Copies on the way in and out: callers may mutate their Part objects.
            versions.append((artifact.model_copy(deep=True), meta))
            return meta.version

    async def load_artifact(
        self,
        *,
        app_name: str,
        user_id: str,
        session_id: str | None,
        filename: str,
        version: int | None = None,
    ) -> types.Part | None:
        """Return a version or None; see `BaseArtifactService.load_artifact`."""
        with self._lock:
            versions = self._store.get(self._key(app_name, user_id, session_id, filename))
            if not versions:
                return None
            if version is None:
                return versions[-1][0].model_copy(deep=True)
            if 0 <= version < len(versions):
                return versions[version][0].model_copy(deep=True)
            return None

    async def list_artifact_keys(
        self, *, app_name: str, user_id: str, session_id: str | None
    ) -> list[str]:
        """Return artifact names; see `BaseArtifactService.list_artifact_keys`."""
        with self._lock:
            names = {
                name
                for (app, uid, sid, name), versions in self._store.items()
                if app == app_name
                and uid == user_id
                and versions
                and (sid == session_id or (sid is None and is_user_scoped(name)))
            }
        return sorted(names)

    async def delete_artifact(
        self, *, app_name: str, user_id: str, session_id: str | None, filename: str
    ) -> None:
        """Delete every version of the artifact."""
        with self._lock:
            self._store.pop(self._key(app_name, user_id, session_id, filename), None)

    async def list_versions(
        self, *, app_name: str, user_id: str, session_id: str | None, filename: str
    ) -> list[int]:
        """Return version numbers; see `BaseArtifactService.list_versions`."""
        metas = await self.list_artifact_versions(
            app_name=app_name, user_id=user_id, session_id=session_id, filename=filename
        )
        return [m.version for m in metas]

    async def list_artifact_versions(
        self, *, app_name: str, user_id: str, session_id: str | None, filename: str
    ) -> list[ArtifactVersion]:
        """Return version metadata; see `BaseArtifactService.list_artifact_versions`."""
        with self._lock:
            versions = self._store.get(self._key(app_name, user_id, session_id, filename), [])
            return [meta for _, meta in versions]
