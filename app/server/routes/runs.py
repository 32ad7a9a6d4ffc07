"""Runs: one agent invocation, streamed as SSE (default) or answered as JSON at the end."""

from __future__ import annotations

from fastapi import APIRouter, Request
from starlette.responses import Response

from app.agents import RunConfig, StreamingMode
from app.server._run_stream import JSONRunResponse, RunArgs, SSERunResponse
from app.server.deps import AppName, JsonBody, ServicesDep, SessionId, UserId
from app.server.schemas import ProblemOut, RunRequest, RunResultOut
from app.server.security.principal import check_client_state, principal_of

router = APIRouter(tags=["runs"])

_SSE_DOC = (
    "Server-Sent Events (`text/event-stream; charset=utf-8`), one frame per blank-line-ended "
    "block: `id: <seq>` + `data: <Event>` per stored event; `data: <Event>` (no `id:`) per "
    "partial event; `: ping` comments while the run is idle; `event: error` + "
    "`data: <ProblemOut>` on any failure once the message is stored; then exactly one "
    "`event: end` + `data: <RunEndOut>` (`reason`: `completed`, `error` or `cancelled`). "
    "A stream without an `end` frame was cut short."
)
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
    "/apps/{app}/users/{uid}/sessions/{sid}:run",
    dependencies=[JsonBody],
    response_class=Response,
    responses={
        200: {
            "model": RunResultOut,
            "description": "The run's events: SSE, or JSON with `Accept: application/json`.",
            "content": {"text/event-stream": {"schema": _SSE_EVENT_SCHEMA}},
        },
        403: {"model": ProblemOut, "description": "`app:`/`temp:` state from a non-admin."},
        404: {"model": ProblemOut, "description": "Unknown app or session."},
        409: {"model": ProblemOut, "description": "A run is already in progress."},
        502: {
            "model": ProblemOut,
            "description": "JSON mode: the model failed; `events` holds what the run stored.",
        },
        503: {"model": ProblemOut, "description": "The app failed to load."},
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
    """Run the agent on the session; see HTTP_API.md for the SSE framing."""
    check_client_state(principal_of(request), body.state_delta)
    runner = services.runners.runner(app)
    settings = services.settings
    run_config = RunConfig(
        streaming_mode=StreamingMode.SSE if body.streaming else StreamingMode.NONE,
    )
    if body.run_config is not None:
        if body.run_config.max_llm_calls is not None:
            run_config.max_llm_calls = body.run_config.max_llm_calls
        run_config.custom_metadata = body.run_config.custom_metadata
    args = RunArgs(
        registry=services.runners,
        runner=runner,
        app_name=app,
        user_id=uid,
        session_id=sid,
        new_message=body.new_message,
        state_delta=body.state_delta,
        invocation_id=body.invocation_id,
        run_config=run_config,
        create_session=body.create_session,
        keepalive_seconds=settings.keepalive_seconds,
    )
    if _wants_json(request.headers.get("accept", "")):
        return JSONRunResponse(args)
    return SSERunResponse(args)


def _wants_json(accept: str) -> bool:
    """JSON only when the client asks for it and not for an event stream."""
    return "application/json" in accept and "text/event-stream" not in accept
