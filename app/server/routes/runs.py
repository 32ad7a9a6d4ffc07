"""Runs: `:run` (one agent invocation, streamed as SSE or answered as JSON at the end), and
the run as a resource: list, read, follow its events (reattach), cancel."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Header, Query, Request
from starlette.responses import Response, StreamingResponse

from app.agents import RunConfig, StreamingMode
from app.events.event import new_invocation_id
from app.runs import MultitaskStrategy, RunRecord, RunStatus
from app.server._run_stream import JSONRunResponse, SSERunResponse
from app.server.deps import AppName, JsonBody, ServicesDep, SessionId, UserId
from app.server.schemas import ProblemOut, RunListOut, RunOut, RunRequest, RunResultOut
from app.server.security.principal import check_client_state, principal_of
from app.server.wire import NativeEncoder, encode_followed
from app.server.wire.encoder import SSE_HEADERS
from app.sessions.base_session_service import decode_page_token, encode_page_token

router = APIRouter(tags=["runs"])

_SSE_DOC = (
    "Server-Sent Events (`text/event-stream; charset=utf-8`), one frame per blank-line-ended "
    "block: `id: <seq>` + `data: <Event>` per stored event; `data: <Event>` (no `id:`) per "
    "partial event; `: ping` comments while the run is idle; `event: error` + "
    "`data: <ProblemOut>` on any failure once the message is stored; then exactly one "
    "`event: end` + `data: <RunEndOut>` (`reason`: `completed`, `error` or `cancelled`). "
    "A stream without an `end` frame was cut short."
)
_SESSION = "/apps/{app}/users/{uid}/sessions/{sid}"
_SSE_EVENT_SCHEMA = {
    # OpenAPI 3.1 convention for text/event-stream: `schema` describes one event.
    "type": "object",
    "description": _SSE_DOC,
    "required": ["data"],
    "properties": {
        "event": {"type": "string", "enum": ["message", "error", "end"]},
        "id": {"type": "string", "pattern": "^[0-9]+$", "description": "The stored seq."},
        "data": {
            "type": "string",
            "contentMediaType": "application/json",
            "contentSchema": {
                "oneOf": [
                    {"$ref": "#/components/schemas/Event"},
                    {"$ref": "#/components/schemas/ProblemOut"},
                    {"$ref": "#/components/schemas/RunEndOut"},
                ]
            },
        },
    },
}


@router.post(
    _SESSION + ":run",
    dependencies=[JsonBody],
    response_class=Response,
    responses={
        200: {
            "model": RunResultOut,
            "description": (
                "The run's events: SSE, or JSON with `Accept: application/json`. Headers "
                "`Location` (the run) and `X-Invocation-Id`."
            ),
            "content": {"text/event-stream": {"schema": _SSE_EVENT_SCHEMA}},
        },
        403: {"model": ProblemOut, "description": "`app:`/`temp:` state from a non-admin."},
        404: {"model": ProblemOut, "description": "Unknown app or session."},
        409: {
            "model": ProblemOut,
            "description": "A run is already in progress (`run_in_progress`, `Retry-After`).",
        },
        429: {
            "model": ProblemOut,
            "description": (
                "A per-user quota is used up (`rate_limited`, `token_budget_exceeded`); headers "
                "`Retry-After`, `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`."
            ),
        },
        502: {
            "model": ProblemOut,
            "description": "JSON mode: the model failed; `events` holds what the run stored.",
        },
        503: {
            "model": ProblemOut,
            "description": "The app failed to load, or the server is draining (`shutting_down`).",
        },
    },
)
async def run(
    app: AppName,
    uid: UserId,
    sid: SessionId,
    body: RunRequest,
    request: Request,
    services: ServicesDep,
) -> Response:
    """Run the agent on the session; see HTTP_API.md for the SSE framing and the options."""
    check_client_state(principal_of(request), body.state_delta)
    run_config = RunConfig(
        streaming_mode=StreamingMode.SSE if body.streaming else StreamingMode.NONE,
    )
    if body.run_config is not None:
        if body.run_config.max_llm_calls is not None:
            run_config.max_llm_calls = body.run_config.max_llm_calls
        run_config.custom_metadata = body.run_config.custom_metadata
    strategy = MultitaskStrategy(body.multitask_strategy)
    args = services.run_args(
        app,
        uid,
        sid,
        new_message=body.new_message,
        state_delta=body.state_delta,
        invocation_id=body.invocation_id or new_invocation_id(),
        resume=body.invocation_id is not None,
        run_config=run_config,
        create_session=body.create_session,
        strategy=strategy,
        continue_on_disconnect=body.on_disconnect == "continue",
        request=(
            body.model_dump(mode="json", exclude_none=True)
            if strategy is MultitaskStrategy.ENQUEUE
            else None
        ),
    )
    if _wants_json(request.headers.get("accept", "")):
        return JSONRunResponse(args)
    return SSERunResponse(args)


def _wants_json(accept: str) -> bool:
    """JSON only when the client asks for it and not for an event stream."""
    return "application/json" in accept and "text/event-stream" not in accept


@router.get(
    _SESSION + "/runs",
    response_model_exclude_none=True,
    responses={404: {"model": ProblemOut, "description": "Unknown app."}},
)
async def list_runs(
    app: AppName,
    uid: UserId,
    sid: SessionId,
    services: ServicesDep,
    status: Literal["queued", "running", "completed", "error", "cancelled"] | None = None,
    page_size: Annotated[int, Query(alias="pageSize", ge=1, le=1000)] = 100,
    page_token: Annotated[str | None, Query(alias="pageToken", max_length=1024)] = None,
) -> RunListOut:
    """List the session's runs, newest first."""
    services.runners.require_known(app)
    before = decode_page_token(page_token) if page_token else None
    records = await services.runs.list_runs(
        (app, uid, sid),
        status=RunStatus(status) if status else None,
        limit=page_size + 1,
        before=before,
    )
    page = records[:page_size]
    token = None
    if len(records) > page_size:
        token = encode_page_token(page[-1].create_time, page[-1].invocation_id)
    return RunListOut(runs=[_run_out(r) for r in page], next_page_token=token)


@router.get(
    _SESSION + "/runs/{invocation_id}",
    responses={404: {"model": ProblemOut, "description": "Unknown app or run."}},
)
async def get_run(
    app: AppName, uid: UserId, sid: SessionId, invocation_id: SessionId, services: ServicesDep
) -> RunOut:
    """Return one run."""
    services.runners.require_known(app)
    return _run_out(await services.runs.get((app, uid, sid), invocation_id))


@router.post(
    _SESSION + "/runs/{invocation_id}:cancel",
    responses={
        404: {"model": ProblemOut, "description": "Unknown app or run."},
        409: {"model": ProblemOut, "description": "The run already ended (`run_finished`)."},
    },
)
async def cancel_run(
    app: AppName,
    uid: UserId,
    sid: SessionId,
    invocation_id: SessionId,
    services: ServicesDep,
    wait: bool = False,
) -> RunOut:
    """Cancel a run on whichever replica runs it; `?wait=true` answers with its final state."""
    services.runners.require_known(app)
    return _run_out(await services.runs.cancel((app, uid, sid), invocation_id, wait=wait))


@router.get(
    _SESSION + "/runs/{invocation_id}/events",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": "The run's events after the cursor, then live ones, then `end`.",
            "content": {"text/event-stream": {"schema": _SSE_EVENT_SCHEMA}},
        },
        404: {"model": ProblemOut, "description": "Unknown app or run."},
    },
)
async def run_events(
    app: AppName,
    uid: UserId,
    sid: SessionId,
    invocation_id: SessionId,
    services: ServicesDep,
    after: Annotated[int | None, Query(ge=0, le=2**62)] = None,
    last_event_id: Annotated[str | None, Header(max_length=32)] = None,
) -> StreamingResponse:
    """Replay the run's stored events after `Last-Event-ID` (or `?after=`), then follow it."""
    services.runners.require_known(app)
    cursor = after or 0
    if last_event_id is not None and last_event_id.strip().isdigit():
        cursor = max(cursor, int(last_event_id.strip()))
    frames = services.runs.follow(
        (app, uid, sid),
        invocation_id,
        after_seq=cursor,
        keepalive=services.settings.keepalive_seconds,
    )
    # Pull the first frame here: an unknown run is a 404 before the stream starts.
    first = await anext(frames)
    headers = {name.decode(): value.decode() for name, value in SSE_HEADERS[1:]}
    return StreamingResponse(
        encode_followed(NativeEncoder(), first, frames),
        media_type="text/event-stream",
        headers=headers,
    )


def _run_out(record: RunRecord) -> RunOut:
    return RunOut.model_validate(record.to_json())
