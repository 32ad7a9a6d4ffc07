"""AG-UI: `POST /apps/{app}/users/{uid}/ag-ui` runs the agent on a `RunAgentInput` and streams
AG-UI events (framing in `app/server/wire/ag_ui.py`).

`threadId` is the session id (the session is created on first use); `runId` is echoed in
`RUN_STARTED`/`RUN_FINISHED`. AG-UI clients send the whole history every time, so only the
trailing `user` and `tool` messages the session has not seen become the run's new message:
a message is seen when its id is one of our event ids (the ids our stream gave the client's
messages) or one recorded as `customMetadata.agUiMessageIds` by the run that stored it, and a
`tool` message is seen once its call has a response. The scan stops at the first seen message
or at any other role, so history the client resends is never stored again. A `tool` message
answers a function call (a long-running one, typically) as a function response.

`state`, `tools` and `context` of the input are not used: the session's state is the truth
(`STATE_SNAPSHOT` sends it), and the agent's tools are its own. `forwardedProps` may carry run
options (`AgUiOptions`). Everything else (one run per session, 409, cancel through
`.../runs/{invocationId}:cancel`, in-band errors once the message is stored) is the shared run
machinery of `:run`.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Literal

from ag_ui.core import (
    AudioPart,
    DataSource,
    DocumentPart,
    FileSource,
    ImagePart,
    RunAgentInput,
    TextPart,
    ToolMessage,
    UrlSource,
    UserMessage,
    VideoPart,
)
from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from google.genai import types
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from starlette.responses import Response

from app.agents import RunConfig, StreamingMode
from app.events.event import Event, new_invocation_id
from app.ids import MAX_ID_LENGTH, SEGMENT_PATTERN, SESSION_ID_RULE
from app.runs import MultitaskStrategy
from app.server._run_stream import SSERunResponse
from app.server.deps import AppName, JsonBody, ServicesDep, UserId
from app.server.schemas import ProblemOut, SessionIdField
from app.server.wire.ag_ui import AgUiEncoder
from app.sessions import GetSessionConfig

router = APIRouter(tags=["frontends"])

RECENT_EVENTS = 200
"""Events read to tell seen messages from new ones (the new ones follow the newest events)."""

MESSAGE_IDS_KEY = "agUiMessageIds"
"""`customMetadata` key: the AG-UI message ids a run took as its new message."""

RUN_ID_KEY = "agUiRunId"
"""`customMetadata` key: the AG-UI `runId` of the run that produced the event."""


class AgUiInput(RunAgentInput):
    """AG-UI's `RunAgentInput` (camelCase); `threadId` is the session id."""

    thread_id: SessionIdField


class AgUiOptions(BaseModel):
    """Our run options, read from `forwardedProps` (other keys there are ignored)."""

    model_config = ConfigDict(alias_generator=to_camel, validate_by_name=True, extra="ignore")

    streaming: bool = True
    """Token streaming (`TEXT_MESSAGE_CONTENT` per chunk); false sends each reply whole."""
    multitask_strategy: Literal["reject", "interrupt", "enqueue"] = "reject"
    """When the thread already has an active run: 409, cancel it, or wait for it (as `:run`)."""
    max_llm_calls: int | None = Field(default=None, ge=1, le=10_000)
    """Model calls allowed in this run."""


_MESSAGE_SCHEMA = {
    "type": "object",
    "required": ["id", "role"],
    "properties": {
        "id": {"type": "string"},
        "role": {
            "type": "string",
            "enum": ["user", "assistant", "tool", "system", "developer", "reasoning", "activity"],
        },
        "content": {"description": "Text, or (user and tool messages) a list of parts."},
        "toolCallId": {"type": "string", "description": "Tool messages: the call answered."},
        "toolCalls": {"type": "array", "items": {"type": "object"}},
    },
}
_INPUT_SCHEMA = {
    "type": "object",
    "title": "RunAgentInput",
    "description": (
        "AG-UI's `RunAgentInput` (https://docs.ag-ui.com), validated with the `ag-ui-protocol` "
        "package's models. `threadId` is the session id."
    ),
    "required": ["threadId", "runId", "messages"],
    "properties": {
        "threadId": {
            "type": "string",
            "minLength": 1,
            "maxLength": MAX_ID_LENGTH,
            "pattern": SEGMENT_PATTERN,
            "description": f"The session id: {SESSION_ID_RULE}.",
        },
        "runId": {"type": "string"},
        "parentRunId": {"type": "string"},
        "protocolVersion": {"type": "string"},
        "state": {"description": "Not used: the session's state is authoritative."},
        "messages": {"type": "array", "items": _MESSAGE_SCHEMA},
        "tools": {"type": "array", "items": {"type": "object"}, "description": "Not used."},
        "context": {"type": "array", "items": {"type": "object"}, "description": "Not used."},
        "forwardedProps": {
            "description": (
                "Run options when an object: `streaming` (bool, default true), "
                "`multitaskStrategy` (`reject`, `interrupt`, `enqueue`), `maxLlmCalls` "
                "(1-10000); other keys are ignored."
            )
        },
    },
}


@router.post(
    "/apps/{app}/users/{uid}/ag-ui",
    dependencies=[JsonBody],
    response_class=Response,
    openapi_extra={
        "requestBody": {
            "required": True,
            "content": {"application/json": {"schema": _INPUT_SCHEMA}},
        }
    },
    responses={
        200: {
            "description": (
                "AG-UI events as Server-Sent Events (`data: <event>` frames, LF line endings): "
                "`RUN_STARTED`, `STATE_SNAPSHOT`, text, tool call and state events, then "
                "`RUN_FINISHED` or a terminal `RUN_ERROR`. Headers `Location` (the run, for "
                "cancel) and `X-Invocation-Id`."
            ),
            "content": {"text/event-stream": {"schema": {"type": "string"}}},
        },
        404: {"model": ProblemOut, "description": "Unknown app."},
        409: {
            "model": ProblemOut,
            "description": "The thread already has a run in progress (`run_in_progress`).",
        },
        422: {"model": ProblemOut, "description": "Bad input, or no message the thread lacks."},
        429: {
            "model": ProblemOut,
            "description": (
                "A per-user quota is used up (`rate_limited`, `token_budget_exceeded`); headers "
                "`Retry-After`, `RateLimit-Limit`, `RateLimit-Remaining`, `RateLimit-Reset`."
            ),
        },
    },
)
async def ag_ui_run(app: AppName, uid: UserId, request: Request, services: ServicesDep) -> Response:
    """Run the agent on the thread's session and stream AG-UI events."""
    services.runners.runner(app)  # an unknown or broken app: 404/503 before any read
    body = _parse(await request.body())
    options = _options(body.forwarded_props)
    session = await services.sessions.get_session_shared(
        app_name=app,
        user_id=uid,
        session_id=body.thread_id,
        config=GetSessionConfig(num_recent_events=RECENT_EVENTS),
    )
    events = session.events if session is not None else []
    message, message_ids = new_message(body, events)
    run_config = RunConfig(
        streaming_mode=StreamingMode.SSE if options.streaming else StreamingMode.NONE,
        custom_metadata={RUN_ID_KEY: body.run_id, MESSAGE_IDS_KEY: message_ids},
    )
    if options.max_llm_calls is not None:
        run_config.max_llm_calls = options.max_llm_calls
    strategy = MultitaskStrategy(options.multitask_strategy)
    args = services.run_args(
        app,
        uid,
        body.thread_id,
        new_message=message,
        state_delta=None,
        invocation_id=new_invocation_id(),
        resume=False,
        run_config=run_config,
        create_session=True,
        strategy=strategy,
        request=(
            {"agUi": {"threadId": body.thread_id, "runId": body.run_id}}
            if strategy is MultitaskStrategy.ENQUEUE
            else None
        ),
    )
    state = dict(session.state) if session is not None else {}
    return SSERunResponse(args, AgUiEncoder(body.thread_id, body.run_id, state))


def new_message(body: RunAgentInput, events: list[Event]) -> tuple[types.Content, list[str]]:
    """The run's new message from the trailing messages `events` do not hold, and their ids.

    Raises:
        RequestValidationError: no new message, or one that cannot be sent to the agent.
    """
    known: set[str] = set()
    answered: set[str] = set()
    calls: dict[str, str] = {}
    for event in events:
        known.add(event.id)
        ids = (event.custom_metadata or {}).get(MESSAGE_IDS_KEY)
        if isinstance(ids, list):
            known.update(i for i in ids if isinstance(i, str))
        for call in event.get_function_calls():
            if call.id:
                calls[call.id] = call.name or ""
        answered.update(r.id for r in event.get_function_responses() if r.id)
    new: list[tuple[int, UserMessage | ToolMessage]] = []
    for index in range(len(body.messages) - 1, -1, -1):
        message = body.messages[index]
        if (isinstance(message, UserMessage) and message.id not in known) or (
            isinstance(message, ToolMessage)
            and not (message.id in known or message.tool_call_id in answered)
        ):
            new.append((index, message))
        else:
            break
    if not new:
        raise _invalid(
            ("body", "messages"),
            "no new message: end the messages with a user or tool message the thread has not seen",
        )
    parts: list[types.Part] = []
    for index, message in reversed(new):
        where = ("body", "messages", index)
        if isinstance(message, ToolMessage):
            name = calls.get(message.tool_call_id)
            if name is None:
                raise _invalid((*where, "toolCallId"), "answers no function call of this thread")
            parts.append(
                types.Part(
                    function_response=types.FunctionResponse(
                        id=message.tool_call_id, name=name, response=_tool_response(message)
                    )
                )
            )
        else:
            parts.extend(_user_parts(message, where))
    return types.Content(role="user", parts=parts), [m.id for _, m in reversed(new)]


def _tool_response(message: ToolMessage) -> dict[str, Any]:
    """A tool message's content as a function response: a JSON object as is, else `result`."""
    content = message.content
    if isinstance(content, str):
        try:
            value: Any = json.loads(content)
        except ValueError:
            value = content
    else:
        value = "".join(p.text for p in content if isinstance(p, TextPart))
    response = value if isinstance(value, dict) else {"result": value}
    if message.error:
        response = {**response, "error": message.error}
    return response


def _user_parts(message: UserMessage, where: tuple[str | int, ...]) -> list[types.Part]:
    content = message.content
    if isinstance(content, str):
        if not content:
            raise _invalid((*where, "content"), "a user message needs content")
        return [types.Part(text=content)]
    parts: list[types.Part] = []
    for number, part in enumerate(content):
        if isinstance(part, TextPart):
            parts.append(types.Part(text=part.text))
        elif isinstance(part, ImagePart | AudioPart | VideoPart | DocumentPart):
            parts.append(_media_part(part, (*where, "content", number)))
    if not parts:
        raise _invalid((*where, "content"), "a user message needs content")
    return parts


def _media_part(
    part: ImagePart | AudioPart | VideoPart | DocumentPart, where: tuple[str | int, ...]
) -> types.Part:
    source = part.source
    if isinstance(source, DataSource):
        try:
            data = base64.b64decode(source.value, validate=True)
        except (binascii.Error, ValueError):
            raise _invalid((*where, "source", "value"), "not base64") from None
        return types.Part(inline_data=types.Blob(mime_type=source.mime_type, data=data))
    if isinstance(source, UrlSource | FileSource):
        return types.Part(
            file_data=types.FileData(file_uri=source.value, mime_type=source.mime_type)
        )
    raise _invalid((*where, "source"), "unsupported source")


def _parse(raw: bytes) -> AgUiInput:
    """The body as a `RunAgentInput` (parsed here, so the OpenAPI document stays compact)."""
    try:
        return AgUiInput.model_validate_json(raw)
    except ValidationError as exc:
        raise RequestValidationError(
            [{**e, "loc": ("body", *e["loc"])} for e in exc.errors(include_url=False)]
        ) from None


def _options(forwarded: Any) -> AgUiOptions:
    """Our options from `forwardedProps` (a non-object is ignored, as AG-UI leaves it free)."""
    if not isinstance(forwarded, dict):
        return AgUiOptions()
    try:
        return AgUiOptions.model_validate(forwarded)
    except ValidationError as exc:
        errors = [
            {**error, "loc": ("body", "forwardedProps", *error["loc"])}
            for error in exc.errors(include_url=False)
        ]
        raise RequestValidationError(errors) from None


def _invalid(loc: tuple[str | int, ...], message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": loc, "msg": message, "type": "value_error"}])
