"""A session's event log, paged by `seq`."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Response

from app.server.deps import AppName, SessionId, Sessions, UserId
from app.server.schemas import EventListOut, ProblemOut

router = APIRouter(tags=["events"])


@router.get(
    "/apps/{app}/users/{uid}/sessions/{sid}/events",
    response_model=EventListOut,
    responses={404: {"model": ProblemOut}},
)
async def list_events(
    app: AppName,
    uid: UserId,
    sid: SessionId,
    sessions: Sessions,
    after: Annotated[int, Query(ge=0, description="Return events with a greater seq.")] = 0,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> Response:
    """Return stored events after a `seq` cursor; `nextAfter` is set when more remain."""
    # Stored JSON is passed through as is; seq is dense, so the page's last seq is after+limit.
    events = await sessions.list_events_json(
        app_name=app, user_id=uid, session_id=sid, after_seq=after, limit=limit + 1
    )
    body = '{"events":[' + ",".join(events[:limit]) + "]"
    if len(events) > limit:
        body += f',"nextAfter":{after + limit}'
    return Response(content=body + "}", media_type="application/json")
