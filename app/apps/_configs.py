"""App-wide settings models, kept apart from `App` so agents can import them."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field


class ResumabilityConfig(BaseModel):
    """Whether invocations record checkpoints and can be resumed by id.

    With `is_resumable=True`, workflow agents emit checkpoint events (`actions.agent_state`,
    `actions.end_of_agent`), a call to a long-running tool pauses the invocation, and
    `Runner.run_async(invocation_id=...)` resumes it, skipping finished sub-agents.
    """

    model_config = ConfigDict(extra="forbid")

    is_resumable: bool = False


class EventsCompactionConfig(BaseModel):
    """When to summarize old events. Not supported: an App given one is refused."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    summarizer: Any = None
    compaction_interval: int | None = Field(default=None, gt=0)
    overlap_size: int | None = Field(default=None, ge=0)
    token_threshold: int | None = Field(default=None, gt=0)
    event_retention_size: int | None = Field(default=None, ge=0)
