"""The ADK-compatible API under `/adk`: the reference ADK api_server's routes and shapes.

So that the reference dev UI and assistant-ui's ADK adapter work unchanged (facts from
google-adk 2.13.0, see the README's "ADK-compatible API"). Runs go through the same machinery
as `:run` (`RunArgs` -> `RunManager.begin` -> Runner -> `AdkEncoder`); only the parsing and the
framing differ. Where the reference has no notion of ours:

- exclusivity: a message while the session has an active run is a 409 `run_in_progress`
  problem before anything is stored (the reference would run both at once); a client may
  send our `multitaskStrategy` in the body to queue or interrupt instead;
- errors are problem+json (their `detail` is where the reference puts its message), with the
  reference's statuses: 404 for an unknown app or session, 409 for a taken session id, and 422
  for a malformed body;
- auth: `/adk/apps/{app}/users/{uid}/...` is bound by the security middleware like our own
  paths; `/adk/run*` check the body's `user_id`/`app_name` here, `/adk/run_live` its query
  in the middleware; `/adk/list-apps` lists only the apps the caller may use.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

from fastapi import APIRouter, Body, HTTPException, Query, Request, Response, WebSocket
from google.genai import types
from starlette.convertors import PathConvertor, register_url_convertor
from starlette.datastructures import QueryParams

import app as app_package
from app.agents import RunConfig, StreamingMode
from app.errors import ArtifactNotFoundError, InvalidRequestError, SessionNotFoundError
from app.events.event import new_invocation_id
from app.events.event_actions import EventActions
from app.ids import SESSION_ID_RULE, is_valid_segment_id
from app.runs import MultitaskStrategy
from app.server._run_stream import JSONRunResponse, RunArgs, SSERunResponse
from app.server.adk_schemas import (
    AdkCreateSessionRequest,
    AdkRunRequest,
    AdkSaveArtifactRequest,
    AdkUpdateSessionRequest,
)
from app.server.deps import (
    AppName,
    ArtifactName,
    Artifacts,
    Caller,
    JsonBody,
    Registry,
    ServicesDep,
    SessionId,
    Sessions,
    UserId,
)
from app.server.errors import status_of
from app.server.routes.live import (
    CLOSE_INTERNAL,
    CLOSE_POLICY,
    LiveDialect,
    LiveTarget,
    serve_live,
)
from app.server.routes.sessions import patch_state, session_json
from app.server.schemas import ProblemOut
from app.server.security.principal import ForbiddenError, check_client_state, principal_of
from app.server.wire.adk import AdkEncoder, error_body
from app.sessions import GetSessionConfig, Session


class AdkArtifactPathConvertor(PathConvertor):
    """`{name:adk_artifact}`: a path, except the reference's `.../versions[/{v}[/metadata]]`.

    Those suffixes are the version routes of the name before them, so a method they do not
    have (`DELETE .../a/versions/0`) is a 405, never an action on an artifact `a/versions/0`.
    """

    regex = r"(?!.*/versions(?:/[^/]*){0,2}$).+"


register_url_convertor("adk_artifact", AdkArtifactPathConvertor())

router = APIRouter(prefix="/adk", tags=["adk"])

_SESSIONS = "/apps/{app}/users/{uid}/sessions"
_SESSION = _SESSIONS + "/{sid}"
_ARTIFACTS = _SESSION + "/artifacts"
_NOT_FOUND: dict[int | str, dict[str, Any]] = {404: {"model": ProblemOut}}
_RUN_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ProblemOut, "description": "No `app_name`."},
    403: {"model": ProblemOut, "description": "Another user's `user_id`, or a forbidden app."},
    404: {"model": ProblemOut, "description": "Unknown app or session."},
    409: {"model": ProblemOut, "description": "A run is already in progress (`run_in_progress`)."},
    422: {"model": ProblemOut, "description": "A malformed body."},
    429: {"model": ProblemOut, "description": "A per-user quota is used up (`Retry-After`)."},
    503: {"model": ProblemOut, "description": "The app failed to load, or the server drains."},
}
_MAX_SESSIONS_LISTED = 10_000

CLOSE_PROTOCOL = 1002
"""The reference's close code for a missing session (`/run_live`)."""

_LIVE_MODALITIES = {"TEXT": "TEXT", "AUDIO": "AUDIO", "VIDEO": "AUDIO"}
"""Query modalities -> response modality (video in is answered with audio)."""
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def _json(body: str | bytes, status: int = 200) -> Response:
    return Response(content=body, status_code=status, media_type="application/json")


# --- apps and version -------------------------------------------------------------------------


@router.get(
    "/list-apps",
    responses={
        200: {
            "description": 'App names; with `detailed=true`, `{"apps": [AppInfo]}`.',
            "content": {"application/json": {"schema": {}}},
        }
    },
)
async def list_apps(
    registry: Registry,
    caller: Caller,
    detailed: bool = False,
    relative_path: Annotated[str | None, Query(max_length=1024)] = None,
) -> Any:
    """List the apps the caller may use (`relative_path`, sent by the dev UI, is ignored)."""
    apps = [a for a in registry.apps() if a.available]
    if caller is not None:
        apps = [a for a in apps if caller.may_use_app(a.name)]
    if not detailed:
        return [a.name for a in apps]
    return {
        "apps": [
            {
                "name": a.name,
                "rootAgentName": a.root_agent.name if a.root_agent else a.name,
                "description": a.description,
                "language": "python",
                "isComputerUse": False,
            }
            for a in apps
        ]
    }


@router.get("/version")
async def version() -> dict[str, str]:
    """The server's version, as the reference's `/version` shows it."""
    info = sys.version_info
    return {
        "version": app_package.__version__,
        "language": "python",
        "language_version": f"{info.major}.{info.minor}.{info.micro}",
    }


# --- runs -------------------------------------------------------------------------------------


class AdkRunResponse(JSONRunResponse):
    """`/adk/run`: the run's stored events as a plain JSON list when it completes."""

    def _success_body(self, events: bytes) -> bytes:
        return events


@router.post(
    "/run",
    dependencies=[JsonBody],
    response_class=Response,
    responses={
        200: {
            "description": "The run's stored events (a JSON list of Event).",
            "content": {
                "application/json": {
                    "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Event"}}
                }
            },
        },
        **_RUN_RESPONSES,
        502: {"model": ProblemOut, "description": "The model failed; `events` holds the rest."},
    },
)
async def run(body: AdkRunRequest, request: Request, services: ServicesDep) -> Response:
    """Run the agent and answer with its events when it ends (the reference's `/run`)."""
    return AdkRunResponse(_run_args(body, request, services, streaming=False))


@router.post(
    "/run_sse",
    dependencies=[JsonBody],
    response_class=Response,
    responses={
        200: {
            "description": (
                "`text/event-stream`: one `data: <Event>` frame per event (partial ones too "
                'with `streaming`), and on a failure a last `data: {"error", "errorCode", '
                '"errorMessage"}` frame. No `id:`, `event:` or `[DONE]`.'
            ),
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        **_RUN_RESPONSES,
    },
)
async def run_sse(body: AdkRunRequest, request: Request, services: ServicesDep) -> Response:
    """Run the agent and stream its events (the reference's `/run_sse` framing)."""
    args = _run_args(body, request, services, streaming=body.streaming)
    return SSERunResponse(args, AdkEncoder(split_artifacts=body.function_call_event_id is None))


def _run_args(
    body: AdkRunRequest, request: Request, services: ServicesDep, *, streaming: bool
) -> RunArgs:
    app = body.app_name
    if app is None:
        raise InvalidRequestError("app_name is required.")
    caller = principal_of(request)
    if caller is not None:
        if not caller.may_use_app(app):
            raise ForbiddenError("This credential may not use this app.")
        if not caller.may_act_for(body.user_id):
            raise ForbiddenError("This credential may not act for this user.")
    check_client_state(caller, body.state_delta)
    run_config = RunConfig(
        streaming_mode=StreamingMode.SSE if streaming else StreamingMode.NONE,
        custom_metadata=body.custom_metadata,
    )
    strategy = MultitaskStrategy(body.multitask_strategy)
    return services.run_args(
        app,
        body.user_id,
        body.session_id,
        new_message=body.new_message,
        state_delta=body.state_delta,
        invocation_id=body.invocation_id or new_invocation_id(),
        resume=body.invocation_id is not None,
        run_config=run_config,
        create_session=False,
        strategy=strategy,
        continue_on_disconnect=body.on_disconnect == "continue",
        request=(
            body.model_dump(mode="json", by_alias=True, exclude_none=True)
            if strategy is MultitaskStrategy.ENQUEUE
            else None
        ),
    )


# --- live -------------------------------------------------------------------------------------


def _live_error_frame(problem: dict[str, Any]) -> str:
    return json.dumps(error_body(problem))


def _live_close_code(exc: BaseException) -> int:
    status = status_of(exc)
    if status == 404:
        return CLOSE_PROTOCOL
    if status in (400, 403, 409, 413, 415, 422, 429):
        return CLOSE_POLICY
    return CLOSE_INTERNAL


ADK_LIVE_DIALECT = LiveDialect(error_frame=_live_error_frame, close_code=_live_close_code)
"""The reference's `/run_live`: errors as `{"error","errorCode","errorMessage"}` frames; a
missing session closes with 1002, bad parameters with 1008."""


@router.websocket("/run_live")
async def run_live(websocket: WebSocket, services: ServicesDep) -> None:
    """Relay a live session; the reference's query parameters and JSON frames (README)."""
    await serve_live(
        websocket, services, lambda: _live_target(websocket.query_params), ADK_LIVE_DIALECT
    )


def _live_target(params: QueryParams) -> LiveTarget:
    """Read the reference's `/run_live` query: `app_name`, `user_id`, `session_id`, ...

    Raises:
        InvalidRequestError: a missing or malformed parameter.
    """
    ids = {}
    for name in ("app_name", "user_id", "session_id"):
        value = params.get(name)
        if value is None:
            raise InvalidRequestError(f"The {name} query parameter is required.")
        if not is_valid_segment_id(value):
            raise InvalidRequestError(f"Invalid {name}: {SESSION_ID_RULE}.")
        ids[name] = value
    modalities: list[str] = []
    for raw in params.getlist("modalities") or ["AUDIO"]:
        for item in raw.split(","):
            modality = _LIVE_MODALITIES.get(item.strip().upper())
            if modality is None:
                raise InvalidRequestError(
                    f"modalities must be TEXT, AUDIO or VIDEO, got {item[:40]!r}."
                )
            if modality not in modalities:
                modalities.append(modality)
    config = RunConfig(response_modalities=modalities)
    if (proactive := _flag(params, "proactive_audio")) is not None:
        config.proactivity = types.ProactivityConfig(proactive_audio=proactive)
    config.enable_affective_dialog = _flag(params, "enable_affective_dialog")
    if _flag(params, "enable_session_resumption"):
        config.session_resumption = types.SessionResumptionConfig(transparent=True)
    for accepted in ("save_live_blob", "explicit_vad_signal"):
        _flag(params, accepted)  # validated; no effect here
    return LiveTarget(ids["app_name"], ids["user_id"], ids["session_id"], config)


def _flag(params: QueryParams, name: str) -> bool | None:
    raw = params.get(name)
    if raw is None:
        return None
    value = raw.strip().lower()
    if value not in _TRUE | _FALSE:
        raise InvalidRequestError(f"{name} must be true or false, got {raw[:20]!r}.")
    return value in _TRUE


# --- sessions ---------------------------------------------------------------------------------


def _summary_json(session: Session) -> str:
    """A session as the reference lists it: every field, `events` empty."""
    head = session.model_dump_json(by_alias=True, exclude_none=True, exclude={"events"})
    return head[:-1] + ',"events":[]}'


@router.post(
    _SESSIONS,
    dependencies=[JsonBody],
    response_model=Session,
    responses={
        400: {"model": ProblemOut, "description": "An initial event ADK would not accept."},
        403: {"model": ProblemOut},
        404: {"model": ProblemOut},
        409: {"model": ProblemOut, "description": "The session id is taken."},
    },
)
async def create_session(
    app: AppName,
    uid: UserId,
    registry: Registry,
    sessions: Sessions,
    caller: Caller,
    body: Annotated[AdkCreateSessionRequest | None, Body()] = None,
) -> Response:
    """Create a session (200 with the Session, as the reference answers)."""
    registry.require_known(app)
    request = body or AdkCreateSessionRequest()
    check_client_state(caller, request.state)
    events = request.events or []
    for index, event in enumerate(events):
        if event.long_running_tool_ids:
            raise InvalidRequestError(
                f"Session initialization event {index} cannot include long-running tool IDs."
            )
        if event.actions != EventActions():
            raise InvalidRequestError(
                f"Session initialization event {index} cannot include event actions."
            )
    session = await sessions.create_session(
        app_name=app, user_id=uid, state=request.state, session_id=request.session_id
    )
    for event in events:
        event.partial = None
        event.seq = None
        await sessions.append_event(session, event)
    return _json(session_json(session))


@router.post(
    _SESSION,
    dependencies=[JsonBody],
    response_model=Session,
    deprecated=True,
    responses={403: {"model": ProblemOut}, 404: {"model": ProblemOut}, 409: {"model": ProblemOut}},
)
async def create_session_with_id(
    app: AppName,
    uid: UserId,
    sid: SessionId,
    registry: Registry,
    sessions: Sessions,
    caller: Caller,
    state: Annotated[dict[str, Any] | None, Body()] = None,
) -> Response:
    """Create a session with this id; the body is its initial state (the reference's old route)."""
    registry.require_known(app)
    check_client_state(caller, state)
    session = await sessions.create_session(app_name=app, user_id=uid, state=state, session_id=sid)
    return _json(session_json(session))


@router.get(
    _SESSIONS,
    responses={
        200: {
            "description": "Every session of the user (a plain list; `events` empty).",
            "content": {
                "application/json": {
                    "schema": {"type": "array", "items": {"$ref": "#/components/schemas/Session"}}
                }
            },
        },
        404: {"model": ProblemOut},
    },
    response_class=Response,
)
async def list_sessions(
    app: AppName, uid: UserId, registry: Registry, sessions: Sessions
) -> Response:
    """List the user's sessions, most recently updated first."""
    registry.require_known(app)
    found: list[str] = []
    token: str | None = None
    while len(found) < _MAX_SESSIONS_LISTED:
        page = await sessions.list_sessions(
            app_name=app, user_id=uid, page_size=1000, page_token=token
        )
        found.extend(_summary_json(s) for s in page.sessions)
        token = page.next_page_token
        if not token:
            break
    return _json("[" + ",".join(found) + "]")


@router.get(_SESSION, response_model=Session, responses=_NOT_FOUND)
async def get_session(app: AppName, uid: UserId, sid: SessionId, sessions: Sessions) -> Response:
    """Return a session with its events."""
    session = await sessions.get_session_shared(app_name=app, user_id=uid, session_id=sid)
    if session is None:
        raise SessionNotFoundError(sid)
    return _json(session_json(session))


@router.patch(
    _SESSION,
    response_model=Session,
    dependencies=[JsonBody],
    responses={403: {"model": ProblemOut}, **_NOT_FOUND},
)
async def update_session(
    app: AppName,
    uid: UserId,
    sid: SessionId,
    body: AdkUpdateSessionRequest,
    sessions: Sessions,
    caller: Caller,
) -> Response:
    """Set state keys by appending one state-only event authored `user`."""
    invocation_id = "p-" + new_invocation_id().removeprefix("e-")
    session = await patch_state(
        sessions, caller, (app, uid, sid), body.state_delta, invocation_id=invocation_id
    )
    return _json(session_json(session))


@router.delete(_SESSION, response_model=None)
async def delete_session(app: AppName, uid: UserId, sid: SessionId, sessions: Sessions) -> None:
    """Delete a session and its events (200 `null` even when it does not exist)."""
    await sessions.delete_session(app_name=app, user_id=uid, session_id=sid)


# --- artifacts (order matters: names may contain `/`) -----------------------------------------


def _version_of(version_id: str) -> int | None:
    """`latest` or a version number; anything else is the reference's 422."""
    if version_id == "latest":
        return None
    if not version_id.isdigit() or len(version_id) > 18:
        raise HTTPException(422, "Invalid version ID")
    return int(version_id)


def _part_json(part: Any) -> Response:
    return _json(part.model_dump_json(by_alias=True, exclude_none=True))


async def _version_metadata(
    artifacts: Artifacts, app: str, uid: str, sid: str, name: str, version: int | None
) -> Any:
    versions = await artifacts.list_artifact_versions(
        app_name=app, user_id=uid, session_id=sid, filename=name
    )
    if version is None:
        return versions[-1] if versions else None
    return next((v for v in versions if v.version == version), None)


def _metadata_out(meta: Any) -> dict[str, Any]:
    out: dict[str, Any] = meta.model_dump(mode="json", by_alias=True, exclude_none=True)
    return out


@router.get(_ARTIFACTS + "/{name:path}/versions/{version_id}/metadata", responses=_NOT_FOUND)
async def get_artifact_version_metadata(
    app: AppName,
    uid: UserId,
    sid: SessionId,
    name: ArtifactName,
    version_id: str,
    artifacts: Artifacts,
) -> dict[str, Any]:
    """Metadata of one version (`latest` or a number)."""
    meta = await _version_metadata(artifacts, app, uid, sid, name, _version_of(version_id))
    if meta is None:
        raise ArtifactNotFoundError(name)
    return _metadata_out(meta)


@router.get(_ARTIFACTS + "/{name:path}/versions/metadata", responses=_NOT_FOUND)
async def list_artifact_versions_metadata(
    app: AppName, uid: UserId, sid: SessionId, name: ArtifactName, artifacts: Artifacts
) -> list[dict[str, Any]]:
    """Metadata of every version, oldest first."""
    versions = await artifacts.list_artifact_versions(
        app_name=app, user_id=uid, session_id=sid, filename=name
    )
    return [_metadata_out(v) for v in versions]


@router.post(
    _ARTIFACTS,
    dependencies=[JsonBody],
    responses={400: {"model": ProblemOut}, 404: {"model": ProblemOut}},
)
async def save_artifact(
    app: AppName,
    uid: UserId,
    sid: SessionId,
    body: AdkSaveArtifactRequest,
    artifacts: Artifacts,
    sessions: Sessions,
) -> dict[str, Any]:
    """Store a new version of an artifact; answers its metadata."""
    existing = await sessions.get_session(
        app_name=app, user_id=uid, session_id=sid, config=GetSessionConfig(num_recent_events=0)
    )
    if existing is None:
        raise SessionNotFoundError(sid)
    version = await artifacts.save_artifact(
        app_name=app,
        user_id=uid,
        session_id=sid,
        filename=body.filename,
        artifact=body.artifact,
        custom_metadata=body.custom_metadata,
    )
    meta = await _version_metadata(artifacts, app, uid, sid, body.filename, version)
    if meta is None:  # deleted concurrently
        raise ArtifactNotFoundError(body.filename)
    return _metadata_out(meta)


@router.get(_ARTIFACTS + "/{name:path}/versions/{version_id}", responses=_NOT_FOUND)
async def load_artifact_version(
    app: AppName,
    uid: UserId,
    sid: SessionId,
    name: ArtifactName,
    version_id: str,
    artifacts: Artifacts,
) -> Response:
    """One version of an artifact (`latest` or a number) as a Part."""
    version = _version_of(version_id)
    part = await artifacts.load_artifact(
        app_name=app, user_id=uid, session_id=sid, filename=name, version=version
    )
    if part is None:
        raise ArtifactNotFoundError(name, version)
    return _part_json(part)


@router.get(_ARTIFACTS)
async def list_artifact_names(
    app: AppName, uid: UserId, sid: SessionId, artifacts: Artifacts
) -> list[str]:
    """The session's artifact names (and the user's `user:` ones)."""
    return await artifacts.list_artifact_keys(app_name=app, user_id=uid, session_id=sid)


@router.get(_ARTIFACTS + "/{name:path}/versions")
async def list_artifact_versions(
    app: AppName, uid: UserId, sid: SessionId, name: ArtifactName, artifacts: Artifacts
) -> list[int]:
    """The artifact's version numbers, ascending."""
    return await artifacts.list_versions(app_name=app, user_id=uid, session_id=sid, filename=name)


@router.get(_ARTIFACTS + "/{name:adk_artifact}", responses=_NOT_FOUND)
async def load_artifact(
    app: AppName,
    uid: UserId,
    sid: SessionId,
    name: ArtifactName,
    artifacts: Artifacts,
    version: Annotated[int | None, Query(ge=0)] = None,
) -> Response:
    """The latest (or the given) version of an artifact as a Part."""
    part = await artifacts.load_artifact(
        app_name=app, user_id=uid, session_id=sid, filename=name, version=version
    )
    if part is None:
        raise ArtifactNotFoundError(name, version)
    return _part_json(part)


@router.delete(_ARTIFACTS + "/{name:adk_artifact}", response_model=None)
async def delete_artifact(
    app: AppName, uid: UserId, sid: SessionId, name: ArtifactName, artifacts: Artifacts
) -> None:
    """Delete every version of an artifact (200 `null`, even when there was none)."""
    await artifacts.delete_artifact(app_name=app, user_id=uid, session_id=sid, filename=name)


# --- what the dev UI asks for on load ----------------------------------------------------------


@router.get("/config/telemetry")
async def telemetry_config() -> dict[str, bool]:
    """The dev UI's telemetry switch: always off here."""
    return {"telemetry": False}


@router.get("/dev/apps/{app}/eval_sets", responses=_NOT_FOUND)
async def list_eval_sets(app: AppName, registry: Registry) -> list[str]:
    """Evaluation sets: none (evaluation is not served here)."""
    registry.require_known(app)
    return []


@router.get("/dev/apps/{app}/eval_results", responses=_NOT_FOUND)
async def list_eval_results(app: AppName, registry: Registry) -> list[str]:
    """Evaluation results: none (evaluation is not served here)."""
    registry.require_known(app)
    return []


@router.get("/dev/apps/{app}/debug/trace/session/{sid}", responses=_NOT_FOUND)
async def session_trace(app: AppName, sid: SessionId, registry: Registry) -> list[Any]:
    """Trace spans of a session: none (traces go to OpenTelemetry, not to the UI)."""
    registry.require_known(app)
    return []
