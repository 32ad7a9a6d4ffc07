"""Request and response bodies of the HTTP API.

Output is camelCase; input accepts camelCase and snake_case. Request bodies forbid unknown
fields, so a typo is a 422 rather than silently ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self

from google.genai import types
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    ModelWrapValidatorHandler,
    StringConstraints,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

from app._genai_enums import strict_enums
from app.artifacts import ArtifactVersion
from app.events.event import Event
from app.ids import MAX_ID_LENGTH, SEGMENT_PATTERN, SESSION_ID_RULE
from app.sessions import Session

SessionIdField = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, pattern=SEGMENT_PATTERN),
    Field(description=f"Session id: {SESSION_ID_RULE}."),
]


class _In(BaseModel):
    """Base of request bodies: camelCase or snake_case keys, unknown keys refused.

    Enum fields of google-genai types inside (e.g. `executableCode.language`) accept only
    their documented values, not any string (see `app._genai_enums`).
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
        extra="forbid",
    )

    @model_validator(mode="wrap")
    @classmethod
    def _strict_enums(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        with strict_enums():
            return handler(data)


class _Out(BaseModel):
    """Base of response bodies: camelCase keys."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_name=True,
        validate_by_alias=True,
        serialize_by_alias=True,
    )


# Requests


class CreateSessionRequest(_In):
    """Body of `POST /apps/{app}/users/{uid}/sessions`; every field is optional."""

    session_id: SessionIdField | None = None
    """Id to use; a uuid is generated when omitted."""

    state: dict[str, Any] | None = None
    """Initial state; `app:`/`user:` keys go to the shared scopes, `temp:` keys are dropped."""


class PatchSessionRequest(_In):
    """Body of `PATCH .../sessions/{sid}`."""

    state_delta: dict[str, Any] = Field(min_length=1)
    """Keys to set; stored as one state-only event authored `user`."""


class RunConfigRequest(_In):
    """The subset of RunConfig a client may set."""

    max_llm_calls: int | None = Field(default=None, ge=1, le=1000)
    """Most model calls the run may make."""

    custom_metadata: dict[str, Any] | None = None
    """Copied onto the run's events as `customMetadata`."""


def user_message(value: types.Content | None, field: str) -> types.Content | None:
    """Check a client's new message (parts, no function calls) and make its role `user`."""
    if value is None:
        return None
    if not value.parts:
        raise ValueError(f"{field} needs at least one part")
    if any(part.function_call for part in value.parts):
        raise ValueError(f"{field} cannot contain function calls")
    value.role = "user"
    return value


class RunRequest(_In):
    """Body of `POST .../sessions/{sid}:run`; `newMessage` is required unless `invocationId`
    or a non-empty `stateDelta` is given."""

    model_config = ConfigDict(
        json_schema_extra={
            "anyOf": [
                {"required": ["newMessage"], "properties": {"newMessage": {"type": "object"}}},
                {"required": ["invocationId"], "properties": {"invocationId": {"type": "string"}}},
                {
                    "required": ["stateDelta"],
                    "properties": {"stateDelta": {"type": "object", "minProperties": 1}},
                },
            ]
        }
    )

    new_message: types.Content | None = None
    """The user's message; its role is forced to `user`."""

    state_delta: dict[str, Any] | None = None
    """State to set before the run."""

    invocation_id: str | None = Field(default=None, min_length=1, max_length=128)
    """Resume this invocation instead of starting a new one."""

    streaming: bool = False
    """Token streaming: partial events precede each final model event."""

    create_session: bool = False
    """Create the session when it does not exist instead of answering 404."""

    run_config: RunConfigRequest | None = None
    """Run options (safe subset)."""

    multitask_strategy: Literal["reject", "enqueue", "interrupt"] = "reject"
    """When the session already has an active run: answer 409 (`reject`), wait for the turn
    of this request in a FIFO queue (`enqueue`), or cancel the active run (`interrupt`)."""

    on_disconnect: Literal["cancel", "continue"] = "cancel"
    """When the client goes away: cancel the run, or let it finish and be stored."""

    @field_validator("new_message")
    @classmethod
    def _user_message(cls, value: types.Content | None) -> types.Content | None:
        return user_message(value, "newMessage")

    @model_validator(mode="after")
    def _something_to_run(self) -> Self:
        if self.new_message is None and self.invocation_id is None and not self.state_delta:
            raise ValueError("newMessage is required unless invocationId or stateDelta is given")
        return self


# Responses


class HealthOut(_Out):
    """`GET /healthz` and `GET /readyz`."""

    status: str


class ToolOut(_Out):
    """A tool an agent can call."""

    name: str
    description: str = ""


class AgentOut(_Out):
    """An agent and its sub-agents."""

    name: str
    description: str = ""
    tools: list[ToolOut] = Field(default_factory=list)
    sub_agents: list[AgentOut] = Field(default_factory=list)


class AppOut(_Out):
    """One app: its root agent, or the error that kept it from loading."""

    name: str
    available: bool = True
    description: str = ""
    root_agent: AgentOut | None = None
    error: str | None = None


class AppListOut(_Out):
    """`GET /apps`."""

    apps: list[AppOut]


class SessionSummaryOut(_Out):
    """A session without its events."""

    id: str
    app_name: str
    user_id: str
    state: dict[str, Any]
    last_update_time: float
    last_seq: int

    @classmethod
    def from_session(cls, session: Session) -> SessionSummaryOut:
        """Copy the fields of a session, leaving its events out."""
        return cls(
            id=session.id,
            app_name=session.app_name,
            user_id=session.user_id,
            state=session.state,
            last_update_time=session.last_update_time,
            last_seq=session.last_seq,
        )


class SessionListOut(_Out):
    """`GET .../sessions`: a page, newest update first."""

    sessions: list[SessionSummaryOut]
    next_page_token: str | None = None


class EventListOut(_Out):
    """`GET .../events`: events in `seq` order; `nextAfter` is set when more remain."""

    events: list[Event]
    next_after: int | None = None


class RunResultOut(_Out):
    """`POST ...:run` with `Accept: application/json`: the stored events of the run."""

    events: list[Event]


class RunEndOut(_Out):
    """The data of the `event: end` frame that closes every run stream."""

    invocation_id: str | None
    last_seq: int | None
    """The seq of the last stored event (None when nothing was stored)."""

    reason: Literal["completed", "error", "cancelled"]


class ArtifactListOut(_Out):
    """`GET .../artifacts`."""

    artifacts: list[str]


class ArtifactVersionListOut(_Out):
    """`GET .../artifacts/{name}/versions`."""

    versions: list[ArtifactVersion]


class ProblemOut(_Out):
    """An RFC 9457 problem (`application/problem+json`)."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    code: str
    errors: list[dict[str, Any]] | None = None


__all__ = [
    "AgentOut",
    "AppListOut",
    "AppOut",
    "ArtifactListOut",
    "ArtifactVersionListOut",
    "CreateSessionRequest",
    "EventListOut",
    "HealthOut",
    "PatchSessionRequest",
    "ProblemOut",
    "RunConfigRequest",
    "RunEndOut",
    "RunRequest",
    "RunResultOut",
    "SessionListOut",
    "SessionSummaryOut",
    "ToolOut",
]


class RunOut(_Out):
    """`GET .../runs/{invocationId}`: one run (invocation) of a session."""

    invocation_id: str
    status: Literal["queued", "running", "completed", "error", "cancelled"]
    create_time: float
    """Seconds since the epoch."""
    start_time: float | None = None
    end_time: float | None = None
    last_seq: int | None = None
    """`seq` of the run's last stored event."""
    error: dict[str, Any] | None = None
    """The problem the run ended with (status `error`)."""


class RunListOut(_Out):
    """`GET .../runs`: a page of runs, newest first."""

    runs: list[RunOut]
    next_page_token: str | None = None


class WindowUsageOut(_Out):
    """A per-window quota: its limit, what the current window used, and when it starts over."""

    limit: int
    used: int
    remaining: int
    window: Literal["second", "minute", "hour", "day"]
    reset_seconds: int
    """Seconds until the current window ends (windows start at multiples of their length
    since the epoch: minutes on the minute, days at 00:00 UTC)."""


class ActiveRunsUsageOut(_Out):
    """Runs of the user queued or running now, on every replica, and the most allowed."""

    limit: int
    used: int


class UsageOut(_Out):
    """`GET /apps/{app}/users/{uid}/usage`: the user's quota counters (null: quota off)."""

    runs: WindowUsageOut | None
    """Runs started in the current `AGENT_SERVICE_RUN_RATE` window."""
    active_runs: ActiveRunsUsageOut | None
    """Runs queued or running (`AGENT_SERVICE_MAX_ACTIVE_RUNS_PER_USER`)."""
    tokens: WindowUsageOut | None
    """Model tokens used in the current `AGENT_SERVICE_TOKEN_BUDGET` window."""
