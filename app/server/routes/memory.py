"""Memory: close a session into memory, search a user's memory, forget it."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query, Response

from app.errors import SessionNotFoundError
from app.memory import SearchMemoryResponse
from app.memory.base_memory_service import DEFAULT_SEARCH_LIMIT
from app.server.deps import AppName, Memory, Registry, ServicesDep, SessionId, Sessions, UserId
from app.server.schemas import ProblemOut

router = APIRouter(tags=["memory"])

_MEMORY = "/apps/{app}/users/{uid}/memory"
MAX_QUERY_CHARS = 1000
MAX_SEARCH_LIMIT = 100

_APP_NOT_FOUND: dict[int | str, dict[str, Any]] = {
    404: {"model": ProblemOut, "description": "Unknown app."}
}


@router.post(
    "/apps/{app}/users/{uid}/sessions/{sid}:close",
    status_code=204,
    response_class=Response,
    responses={
        404: {"model": ProblemOut, "description": "Unknown app or session."},
        409: {"model": ProblemOut, "description": "A run is in progress on the session."},
        503: {"model": ProblemOut, "description": "The app failed to load."},
    },
)
async def close_session(
    app: AppName,
    uid: UserId,
    sid: SessionId,
    registry: Registry,
    sessions: Sessions,
    services: ServicesDep,
) -> None:
    """Add the session's new events to the user's memory (closing again adds nothing twice).

    The session stays usable; a later close adds only what was said since.
    """
    runner = registry.runner(app)
    # A run that starts meanwhile is harmless: its events are newer than what this close
    # remembers, so the next close adds them.
    await services.runs.ensure_idle((app, uid, sid))
    session = await sessions.get_session(app_name=app, user_id=uid, session_id=sid)
    if session is None:
        raise SessionNotFoundError(sid)
    await runner.close_session(session)


@router.get(_MEMORY, response_model_exclude_none=True, responses=_APP_NOT_FOUND)
async def search_memory(
    app: AppName,
    uid: UserId,
    registry: Registry,
    memory: Memory,
    query: Annotated[
        str,
        Query(min_length=1, max_length=MAX_QUERY_CHARS, description="Words to look for."),
    ],
    limit: Annotated[
        int, Query(ge=1, le=MAX_SEARCH_LIMIT, description="Most memories returned.")
    ] = DEFAULT_SEARCH_LIMIT,
) -> SearchMemoryResponse:
    """Search the user's memory of this app: memories holding any query word, best first."""
    registry.require_known(app)
    return await memory.search_memory(app_name=app, user_id=uid, query=query, limit=limit)


@router.delete(_MEMORY, status_code=204, response_class=Response, responses=_APP_NOT_FOUND)
async def forget_user(app: AppName, uid: UserId, registry: Registry, memory: Memory) -> None:
    """Forget everything remembered of the user in this app."""
    registry.require_known(app)
    await memory.delete_memory(app_name=app, user_id=uid)


@router.delete(
    "/apps/{app}/users/{uid}/sessions/{sid}/memory",
    status_code=204,
    response_class=Response,
    responses=_APP_NOT_FOUND,
)
async def forget_session(
    app: AppName, uid: UserId, sid: SessionId, registry: Registry, memory: Memory
) -> None:
    """Forget what was remembered of one session (whether or not the session still exists)."""
    registry.require_known(app)
    await memory.delete_memory(app_name=app, user_id=uid, session_id=sid)
