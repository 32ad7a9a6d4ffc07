"""Artifacts of a session: list, read (a version), list versions, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response
from starlette.convertors import PathConvertor, register_url_convertor

from app.errors import ArtifactNotFoundError, SessionNotFoundError
from app.server.deps import AppName, ArtifactName, Artifacts, SessionId, Sessions, UserId
from app.server.schemas import ArtifactListOut, ArtifactVersionListOut, ProblemOut
from app.sessions import BaseSessionService, GetSessionConfig


class ArtifactPathConvertor(PathConvertor):
    """`{name:artifact}`: a path, except one ending in `/versions`.

    That suffix is the versions resource of the name before it (artifact names may not end
    with it, see `app.ids`), so `DELETE .../a/versions` is a 405 there, not a 404 for an
    artifact named `a/versions`.
    """

    regex = "(?:.*/(?!versions$)[^/]*|[^/]*)"


register_url_convertor("artifact", ArtifactPathConvertor())

router = APIRouter(tags=["artifacts"])

_BASE = "/apps/{app}/users/{uid}/sessions/{sid}/artifacts"
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ProblemOut}}


async def _require_session(sessions: BaseSessionService, app: str, uid: str, sid: str) -> None:
    session = await sessions.get_session(
        app_name=app, user_id=uid, session_id=sid, config=GetSessionConfig(num_recent_events=0)
    )
    if session is None:
        raise SessionNotFoundError(sid)


@router.get(_BASE, responses=_NOT_FOUND)
async def list_artifacts(
    app: AppName, uid: UserId, sid: SessionId, sessions: Sessions, artifacts: Artifacts
) -> ArtifactListOut:
    """List the session's artifact names (and the user's `user:` ones)."""
    await _require_session(sessions, app, uid, sid)
    names = await artifacts.list_artifact_keys(app_name=app, user_id=uid, session_id=sid)
    return ArtifactListOut(artifacts=names)


@router.get(_BASE + "/{name:path}/versions", responses=_NOT_FOUND)
async def list_artifact_versions(
    app: AppName, uid: UserId, sid: SessionId, name: ArtifactName, artifacts: Artifacts
) -> ArtifactVersionListOut:
    """List every stored version of an artifact with its metadata."""
    versions = await artifacts.list_artifact_versions(
        app_name=app, user_id=uid, session_id=sid, filename=name
    )
    if not versions:
        raise ArtifactNotFoundError(name)
    return ArtifactVersionListOut(versions=versions)


@router.get(
    _BASE + "/{name:artifact}",
    responses={
        200: {
            "description": "The artifact as a google-genai Part (`text` or `inlineData`).",
            "content": {"application/json": {"schema": {"type": "object"}}},
        },
        **_NOT_FOUND,
    },
    response_class=Response,
)
async def get_artifact(
    app: AppName,
    uid: UserId,
    sid: SessionId,
    name: ArtifactName,
    artifacts: Artifacts,
    version: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    """Return the latest (or the given) version of an artifact as a Part."""
    part = await artifacts.load_artifact(
        app_name=app, user_id=uid, session_id=sid, filename=name, version=version
    )
    if part is None:
        raise ArtifactNotFoundError(name, version)
    return Response(
        content=part.model_dump_json(by_alias=True, exclude_none=True),
        media_type="application/json",
    )


@router.delete(
    _BASE + "/{name:artifact}", status_code=204, response_class=Response, responses=_NOT_FOUND
)
async def delete_artifact(
    app: AppName, uid: UserId, sid: SessionId, name: ArtifactName, artifacts: Artifacts
) -> None:
    """Delete every version of an artifact (404 when there is none)."""
    versions = await artifacts.list_versions(
        app_name=app, user_id=uid, session_id=sid, filename=name
    )
    if not versions:
        raise ArtifactNotFoundError(name)
    await artifacts.delete_artifact(app_name=app, user_id=uid, session_id=sid, filename=name)
