"""Request bodies of the ADK-compatible API (`/adk`), shaped like the reference api_server's.

Like the reference, bodies accept snake_case and camelCase keys and ignore unknown ones (its
clients add fields over time); values are validated as strictly as on our own routes.
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
from app.events.event import Event
from app.ids import MAX_ID_LENGTH, SEGMENT_PATTERN
from app.server.schemas import user_message

_Id = Annotated[
    str, StringConstraints(min_length=1, max_length=MAX_ID_LENGTH, pattern=SEGMENT_PATTERN)
]


class _AdkIn(BaseModel):
    """Base of `/adk` request bodies: either key case, unknown keys ignored."""

    model_config = ConfigDict(
        alias_generator=to_camel, validate_by_name=True, validate_by_alias=True, extra="ignore"
    )

    @model_validator(mode="wrap")
    @classmethod
    def _strict_enums(cls, data: Any, handler: ModelWrapValidatorHandler[Self]) -> Self:
        with strict_enums():
            return handler(data)


class AdkRunRequest(_AdkIn):
    """Body of `POST /adk/run` and `/adk/run_sse` (the reference's `RunAgentRequest`).

    `multitaskStrategy` and `onDisconnect` are ours (see `RunRequest`); the reference clients
    never send them, so a second message while a run is in progress is a 409.
    """

    app_name: _Id | None = None
    """The app; required (the reference's `ADK_DEFAULT_APP_NAME` fallback is not supported)."""

    user_id: _Id
    session_id: _Id
    new_message: types.Content | None = None
    """The user's message; without one the agent runs on the session as it is."""

    streaming: bool = False
    """Token streaming (`/run_sse` only; `/run` ignores it, as the reference does)."""

    state_delta: dict[str, Any] | None = None
    function_call_event_id: str | None = Field(default=None, max_length=MAX_ID_LENGTH)
    """Set by clients answering a long-running call: content and artifacts stay in one frame."""

    invocation_id: str | None = Field(default=None, min_length=1, max_length=128)
    """Resume this invocation instead of starting a new one."""

    custom_metadata: dict[str, Any] | None = None
    """Copied onto the run's events as `customMetadata`."""

    service_tier: str | None = Field(default=None, max_length=64)
    """Accepted for compatibility; has no effect here."""

    multitask_strategy: Literal["reject", "enqueue", "interrupt"] = "reject"
    on_disconnect: Literal["cancel", "continue"] = "cancel"

    @field_validator("new_message")
    @classmethod
    def _user_message(cls, value: types.Content | None) -> types.Content | None:
        return user_message(value, "new_message")


class AdkCreateSessionRequest(_AdkIn):
    """Body of `POST /adk/apps/{app}/users/{uid}/sessions`; every field is optional."""

    session_id: _Id | None = None
    state: dict[str, Any] | None = None
    events: list[Event] | None = Field(default=None, max_length=1000)
    """Events to start the session with (plain content: no actions, no long-running calls)."""


class AdkUpdateSessionRequest(_AdkIn):
    """Body of `PATCH /adk/apps/{app}/users/{uid}/sessions/{sid}`."""

    state_delta: dict[str, Any]


class AdkSaveArtifactRequest(_AdkIn):
    """Body of `POST /adk/apps/{app}/users/{uid}/sessions/{sid}/artifacts`."""

    filename: str = Field(min_length=1, max_length=1024)
    artifact: types.Part
    custom_metadata: dict[str, Any] | None = None

    @field_validator("artifact")
    @classmethod
    def _has_data(cls, value: types.Part) -> types.Part:
        if value.inline_data is None and value.text is None:
            raise ValueError("an artifact needs inline_data or text")
        return value
