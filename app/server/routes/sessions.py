"""Sessions: create, list, read, update state, delete."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body, Query, Response

from app.errors import SessionNotFoundError
from app.events.event import Event, new_invocation_id
from app.events.event_actions import EventActions
from app.server.deps import AppName, Caller, JsonBody, Registry, SessionId, Sessions, UserId
from app.server.schemas import (
    CreateSessionRequest,
    PatchSessionRequest,
    ProblemOut,
    SessionListOut,
    SessionSummaryOut,
)
from app.server.security.principal import Principal, check_client_state
from app.sessions import BaseSessionService, GetSessionConfig, Session

router = APIRouter(tags=["sessions"])

_SESSION = "/apps/{app}/users/{uid}/sessions/{sid}"
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ProblemOut}}


def session_json(session: Session) -> str:
    """Encode a session, splicing in each event's stored JSON instead of re-encoding it."""
    head = session.model_dump_json(by_alias=True, exclude_none=True, exclude={"events"})
    events = ",".join(event.to_json() for event in session.events)
    return head[:-1] + ',"events":[' + events + "]}"


async def patch_state(
    sessions: BaseSessionService,
    caller: Principal | None,
    key: tuple[str, str, str],
    state_delta: dict[str, Any],
    *,
    invocation_id: str,
) -> Session:
    """Append one state-only event authored `user` (a client's PATCH) and return the session.

    Raises:
        ForbiddenError: `app:`/`temp:` keys from a caller who is not an admin.
        SessionNotFoundError: no such session.
    """
    check_client_state(caller, state_delta)
    app, uid, sid = key
    session = await sessions.get_session_shared(app_name=app, user_id=uid, session_id=sid)
    if session is None:
        raise SessionNotFoundError(sid)
    event = Event(
        author="user",
        invocation_id=invocation_id,
        actions=EventActions(state_delta=dict(state_delta)),
    )
    await sessions.append_event(session, event)
    return session


def _json(body: str, status: int = 200) -> Response:
    return Response(content=body, status_code=status, media_type="application/json")


@router.post(
    "/apps/{app}/users/{uid}/sessions",
    status_code=201,
    dependencies=[JsonBody],
    responses={403: {"model": ProblemOut}, 404: {"model": ProblemOut}, 409: {"model": ProblemOut}},
)
async def create_session(
    app: AppName,
    uid: UserId,
    registry: Registry,
    sessions: Sessions,
    caller: Caller,
    body: Annotated[CreateSessionRequest | None, Body()] = None,
) -> SessionSummaryOut:
    """Create a session (409 `session_exists` when the id is taken)."""
    registry.require_known(app)
    request = body or CreateSessionRequest()
    check_client_state(caller, request.state)
    session = await sessions.create_session(
        app_name=app, user_id=uid, state=request.state, session_id=request.session_id
    )
    return SessionSummaryOut.from_session(session)


@router.get("/apps/{app}/users/{uid}/sessions", response_model_exclude_none=True)
async def list_sessions(
    app: AppName,
    uid: UserId,
    registry: Registry,
    sessions: Sessions,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=1000)] = 100,
    page_token: Annotated[str | None, Query(alias="pageToken", max_length=1024)] = None,
) -> SessionListOut:
    """List the user's sessions, most recently updated first."""
    registry.require_known(app)
    page = await sessions.list_sessions(
        app_name=app, user_id=uid, page_size=page_size, page_token=page_token or None
    )
    return SessionListOut(
        sessions=[SessionSummaryOut.from_session(s) for s in page.sessions],
        next_page_token=page.next_page_token,
    )


@router.get(_SESSION, response_model=Session, responses=_NOT_FOUND)
async def get_session(
    app: AppName,
    uid: UserId,
    sid: SessionId,
    sessions: Sessions,
    num_recent_events: Annotated[int | None, Query(alias="numRecentEvents", ge=0)] = None,
) -> Response:
    """Return a session with its events (only the newest N with `numRecentEvents`)."""
    config = (
        None if num_recent_events is None else GetSessionConfig(num_recent_events=num_recent_events)
    )
    # Shared: the events are only encoded (from their stored JSON), never edited.
    session = await sessions.get_session_shared(
        app_name=app, user_id=uid, session_id=sid, config=config
    )
    if session is None:
        raise SessionNotFoundError(sid)
    return _json(session_json(session))


@router.patch(
    _SESSION,
    response_model=Session,
    dependencies=[JsonBody],
    responses={403: {"model": ProblemOut}, **_NOT_FOUND},
)
async def update_session_state(
    app: AppName,
    uid: UserId,
    sid: SessionId,
    body: PatchSessionRequest,
    sessions: Sessions,
    caller: Caller,
) -> Response:
    """Set state keys by appending one state-only event authored `user`."""
    key = (app, uid, sid)
    session = await patch_state(
        sessions, caller, key, body.state_delta, invocation_id=new_invocation_id()
    )
    return _json(session_json(session))


@router.delete(_SESSION, status_code=204, response_class=Response, responses=_NOT_FOUND)
async def delete_session(app: AppName, uid: UserId, sid: SessionId, sessions: Sessions) -> None:
    """Delete a session and its events (404 when it does not exist)."""
    existing = await sessions.get_session(
        app_name=app, user_id=uid, session_id=sid, config=GetSessionConfig(num_recent_events=0)
    )
    if existing is None:
        raise SessionNotFoundError(sid)
    await sessions.delete_session(app_name=app, user_id=uid, session_id=sid)
