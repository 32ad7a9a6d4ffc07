"""The Vercel AI SDK chat routes: `useChat`'s request in, the UI message stream v1 out.

`POST .../ai-sdk/chat` takes `DefaultChatTransport`'s body. Its `id` is the session id (the
session is created on first use) and the last user message is the new message: the rest of
`messages` is the client's copy of the history, which is never trusted, since the session
holds the real one. The run goes through the same machinery as `:run` (one run per session,
409 before anything is stored, cancel on disconnect, in-band errors); only the framing
differs (`app/server/wire/ai_sdk.py`). `GET .../ai-sdk/chat/{sid}/stream` is `useChat`'s
resume: the session's active run replayed from its start, then followed live.
"""

from __future__ import annotations

import base64
import binascii
import urllib.parse
from typing import Any, Literal

from fastapi import APIRouter
from fastapi.exceptions import RequestValidationError
from google.genai import types
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel
from starlette.responses import Response, StreamingResponse

from app.agents import RunConfig, StreamingMode
from app.errors import RunNotFoundError
from app.events.event import new_invocation_id
from app.runs import RunStatus
from app.server._run_stream import SSERunResponse
from app.server.deps import AppName, JsonBody, ServicesDep, SessionId, UserId
from app.server.schemas import ProblemOut, SessionIdField
from app.server.wire import encode_followed
from app.server.wire.ai_sdk import AiSdkEncoder
from app.sessions import BaseSessionService, GetSessionConfig

router = APIRouter(tags=["frontends"])

RECENT_EVENTS_FOR_TOOL_RESULTS = 100
"""How far back a client's tool output may answer a long-running call (events)."""

_CHAT = "/apps/{app}/users/{uid}/ai-sdk/chat"

_STREAM_DOC = (
    "The Vercel AI SDK UI message stream v1 (header `x-vercel-ai-ui-message-stream: v1`): "
    "`data: <chunk>` frames, `start` (messageId: the invocation id), `start-step`/"
    "`finish-step` per model step, `text-start`/`text-delta`/`text-end`, "
    "`reasoning-start`/`reasoning-delta`/`reasoning-end`, `tool-input-available` and "
    "`tool-output-available` or `tool-output-error` (all `dynamic: true`), "
    "`data-state-delta` (an event's stateDelta), `error` (errorText) when the run failed, "
    "`abort` when it was cancelled, `finish`, then `data: [DONE]`. `: ping` comments while "
    "the run is idle."
)
_STREAM_RESPONSE: dict[str, Any] = {
    "description": _STREAM_DOC,
    "content": {
        "text/event-stream": {
            "schema": {
                "type": "object",
                "description": _STREAM_DOC,
                "required": ["data"],
                "properties": {
                    "data": {
                        "type": "string",
                        "description": "A UI message chunk as JSON (`type` says which), or "
                        "`[DONE]`.",
                    }
                },
            }
        }
    },
}


class _Loose(BaseModel):
    """Client-defined shapes: the fields this service reads; any other key is ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="ignore",
    )


class UIMessagePartIn(_Loose):
    """A part of a UI message: `text` and `file` parts of the new message are used, and tool
    parts carrying the client's output for a long-running call."""

    type: str = Field(min_length=1, max_length=256)
    text: str | None = None
    media_type: str | None = Field(default=None, max_length=256)
    url: str | None = None
    filename: str | None = Field(default=None, max_length=1024)
    tool_call_id: str | None = Field(default=None, max_length=1024)
    state: str | None = Field(default=None, max_length=64)
    output: Any = None
    error_text: str | None = None


class UIMessageIn(_Loose):
    """A UI message as `useChat` sends it."""

    id: str | None = Field(default=None, max_length=1024)
    role: Literal["system", "user", "assistant"]
    parts: list[UIMessagePartIn] = Field(default_factory=list)


class ChatRequest(_Loose):
    """`DefaultChatTransport`'s body (`useChat`), plus what its `body` option may add."""

    id: SessionIdField
    """The chat id: the session id (created on first use)."""

    messages: list[UIMessageIn] = Field(min_length=1)
    """The client's whole chat; only the last user message is read (the new message), or,
    when the chat ends with an assistant message, its outputs for long-running tool calls."""

    trigger: str | None = Field(default=None, max_length=64)
    """`submit-message` or `regenerate-message` (regenerating sends the message again)."""

    on_disconnect: Literal["cancel", "continue"] = "cancel"
    """When the client goes away: cancel the run, or let it finish (to resume it later)."""


@router.post(
    _CHAT,
    dependencies=[JsonBody],
    response_class=Response,
    responses={
        200: _STREAM_RESPONSE,
        404: {"model": ProblemOut, "description": "Unknown app."},
        409: {
            "model": ProblemOut,
            "description": "A run is already in progress (`run_in_progress`, `Retry-After`).",
        },
        422: {"model": ProblemOut, "description": "Bad body: no usable user message, bad id."},
        429: {
            "model": ProblemOut,
            "description": (
                "A per-user quota is used up (`rate_limited`, `token_budget_exceeded`); headers "
                "`Retry-After`, `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`."
            ),
        },
        503: {
            "model": ProblemOut,
            "description": "The app failed to load, or the server is draining (`shutting_down`).",
        },
    },
)
async def chat(app: AppName, uid: UserId, body: ChatRequest, services: ServicesDep) -> Response:
    """Run the agent on the chat's session with its last user message (`useChat`'s POST)."""
    services.runners.runner(app)  # an unknown or broken app: 404/503 before any read
    if body.messages[-1].role == "assistant":
        message = await tool_results(body, services.sessions, (app, uid, body.id))
    else:
        message = new_message(body)
    invocation_id = new_invocation_id()
    args = services.run_args(
        app,
        uid,
        body.id,
        new_message=message,
        state_delta=None,
        invocation_id=invocation_id,
        resume=False,
        run_config=RunConfig(streaming_mode=StreamingMode.SSE),
        create_session=True,
        continue_on_disconnect=body.on_disconnect == "continue",
    )
    return SSERunResponse(args, AiSdkEncoder(invocation_id))


@router.get(
    _CHAT + "/{sid}/stream",
    response_class=Response,
    responses={
        200: _STREAM_RESPONSE,
        204: {"description": "The chat has no active run."},
        404: {"model": ProblemOut, "description": "Unknown app."},
    },
)
async def resume_chat(app: AppName, uid: UserId, sid: SessionId, services: ServicesDep) -> Response:
    """Replay the chat's active run from its start, then follow it live (`useChat` resume)."""
    services.runners.require_known(app)
    key = (app, uid, sid)
    running = await services.runs.list_runs(key, status=RunStatus.RUNNING, limit=1, before=None)
    if not running:
        return Response(status_code=204)
    invocation_id = running[0].invocation_id
    frames = services.runs.follow(
        key, invocation_id, after_seq=0, keepalive=services.settings.keepalive_seconds
    )
    try:
        first = await anext(frames)
    except RunNotFoundError:  # the session was deleted meanwhile
        return Response(status_code=204)
    encoder = AiSdkEncoder(invocation_id, resumed=True)
    return StreamingResponse(
        encode_followed(encoder, first, frames),
        headers={name.decode(): value.decode() for name, value in encoder.headers},
    )


def new_message(body: ChatRequest) -> types.Content:
    """The last user message as the run's new message (422 when there is no usable one)."""
    for index in range(len(body.messages) - 1, -1, -1):
        if body.messages[index].role == "user":
            break
    else:
        raise _invalid(("messages",), "The chat has no user message.")
    parts: list[types.Part] = []
    for number, part in enumerate(body.messages[index].parts):
        where = ("messages", index, "parts", number)
        if part.type == "text":
            if part.text:
                parts.append(types.Part(text=part.text))
        elif part.type == "file":
            parts.append(_file_part(part, where))
    if not parts:
        raise _invalid(
            ("messages", index, "parts"), "The last user message has no text or file part."
        )
    return types.Content(role="user", parts=parts)


async def tool_results(
    body: ChatRequest, sessions: BaseSessionService, key: tuple[str, str, str]
) -> types.Content:
    """The client's outputs for the session's open long-running calls, as function responses.

    Only calls the session holds as long-running and not yet answered by the user count: the
    outputs of every other tool part are the client's copy of what the service sent.
    """
    index = len(body.messages) - 1
    given = {
        part.tool_call_id: part
        for part in body.messages[index].parts
        if part.tool_call_id
        and (part.type == "dynamic-tool" or part.type.startswith("tool-"))
        and part.state in ("output-available", "output-error")
    }
    open_calls = await _open_long_running_calls(sessions, key, set(given)) if given else {}
    if not open_calls:
        raise _invalid(
            ("messages", index),
            "The chat ends with an assistant message that answers no open long-running tool "
            "call; send a user message.",
        )
    parts = []
    for call_id, name in open_calls.items():
        part = given[call_id]
        if part.state == "output-error":
            response: dict[str, Any] = {"error": part.error_text or "error"}
        elif isinstance(part.output, dict):
            response = part.output
        else:
            response = {"result": part.output}
        parts.append(
            types.Part(
                function_response=types.FunctionResponse(id=call_id, name=name, response=response)
            )
        )
    return types.Content(role="user", parts=parts)


async def _open_long_running_calls(
    sessions: BaseSessionService, key: tuple[str, str, str], wanted: set[str]
) -> dict[str, str]:
    """{call id: tool name} of `wanted` long-running calls the user has not answered yet."""
    app_name, user_id, session_id = key
    config = GetSessionConfig(num_recent_events=RECENT_EVENTS_FOR_TOOL_RESULTS)
    session = await sessions.get_session(
        app_name=app_name, user_id=user_id, session_id=session_id, config=config
    )
    if session is None:
        return {}
    found: dict[str, str] = {}
    for event in session.events:
        if event.author == "user":
            for response in event.get_function_responses():
                found.pop(response.id or "", None)
        elif event.long_running_tool_ids and wanted & event.long_running_tool_ids:
            for call in event.get_function_calls():
                if call.id in wanted and call.id in event.long_running_tool_ids:
                    found[call.id] = call.name or ""
    return found


def _file_part(part: UIMessagePartIn, where: tuple[Any, ...]) -> types.Part:
    """A `file` part: a `data:` URL becomes inline data, an http(s) URL a file reference."""
    url = part.url or ""
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme in ("http", "https"):
        if not part.media_type:
            raise _invalid((*where, "mediaType"), "A file part needs its mediaType.")
        return types.Part(
            file_data=types.FileData(
                file_uri=url, mime_type=part.media_type, display_name=part.filename
            )
        )
    if scheme != "data" or "," not in url:
        raise _invalid((*where, "url"), "A file part's url must be a data: or http(s) URL.")
    header, _, payload = url[5:].partition(",")
    params = header.split(";")
    try:
        if "base64" in params[1:]:
            data = base64.b64decode(payload, validate=True)
        else:
            data = urllib.parse.unquote_to_bytes(payload)
    except (binascii.Error, ValueError):
        raise _invalid((*where, "url"), "The file part's data: URL is not valid base64.") from None
    mime_type = part.media_type or params[0] or "text/plain"
    return types.Part(
        inline_data=types.Blob(data=data, mime_type=mime_type, display_name=part.filename)
    )


def _invalid(loc: tuple[Any, ...], message: str) -> RequestValidationError:
    return RequestValidationError(
        [{"loc": ("body", *loc), "msg": message, "type": "value_error", "input": None}]
    )
