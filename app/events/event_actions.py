"""EventActions: the side effects an event carries (state, artifacts, transfer, escalation)."""

from __future__ import annotations

from typing import Any

from google.genai import types
from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel


class EventCompaction(BaseModel):
    """A summary that replaces the events between two timestamps."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    start_timestamp: float
    end_timestamp: float
    compacted_content: types.Content


class EventActions(BaseModel):
    """What an event does besides carrying content."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        ser_json_bytes="base64",
        val_json_bytes="base64",
    )

    skip_summarization: bool | None = None
    """The model should not summarize this function response."""

    state_delta: dict[str, Any] = Field(default_factory=dict)
    """Keys set by this event; `app:`/`user:` keys go to shared scopes, `temp:` is not stored."""

    artifact_delta: dict[str, int] = Field(default_factory=dict)
    """Artifact filename -> the version this event saved."""

    transfer_to_agent: str | None = None
    """Hand the conversation to the named agent."""

    transfer_reason: str | None = None
    """Why the conversation was handed over."""

    escalate: bool | None = None
    """Leave the enclosing loop (LoopAgent) or hand back to a parent."""

    requested_auth_configs: dict[str, Any] = Field(default_factory=dict)
    """Function call id -> auth config the tool asked the user for."""

    requested_tool_confirmations: dict[str, Any] = Field(default_factory=dict)
    """Function call id -> confirmation the tool asked the user for."""

    compaction: EventCompaction | None = None
    """Set on a compaction event: the summary of older events."""

    end_of_agent: bool | None = None
    """The authoring agent finished its run."""

    agent_state: dict[str, Any] | None = None
    """Agent-specific state to resume from (resumable apps)."""

    # The reference runtime's workflow and UI fields: stored and returned, not acted on here.
    rewind_before_invocation_id: str | None = None
    route: bool | int | str | list[bool | int | str] | None = None
    render_ui_widgets: list[dict[str, Any]] | None = None
    set_model_response: Any | None = None

    def is_empty(self) -> bool:
        """Return True when the actions carry nothing."""
        return not (
            self.state_delta
            or self.artifact_delta
            or self.transfer_to_agent
            or self.escalate
            or self.skip_summarization
            or self.requested_auth_configs
            or self.requested_tool_confirmations
            or self.compaction
            or self.end_of_agent
            or self.agent_state
            or self.rewind_before_invocation_id
            or self.route is not None
            or self.render_ui_widgets
            or self.set_model_response is not None
        )

    def merge(self, other: EventActions) -> None:
        """Fold `other` into these actions (used when parallel tool responses merge)."""
        self.state_delta.update(other.state_delta)
        self.artifact_delta.update(other.artifact_delta)
        self.requested_auth_configs.update(other.requested_auth_configs)
        self.requested_tool_confirmations.update(other.requested_tool_confirmations)
        if other.transfer_to_agent:
            self.transfer_to_agent = other.transfer_to_agent
        if other.escalate:
            self.escalate = True
        if other.skip_summarization:
            self.skip_summarization = True
