"""App: a root agent plus the plugins and settings that apply to the whole application."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.agents.base_agent import BaseAgent
from app.plugins.base_plugin import BasePlugin


class ResumabilityConfig(BaseModel):
    """Whether invocations paused on a long-running tool can be resumed by id."""

    is_resumable: bool = False


class EventsCompactionConfig(BaseModel):
    """When to summarize old events (accepted for compatibility; compaction is not run)."""

    compaction_interval: int = 10
    overlap_size: int = 2


class App(BaseModel):
    """An application: a name, a root agent and app-wide plugins."""

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    name: str
    """App name; sessions are stored under it."""

    root_agent: BaseAgent
    """The agent each run starts from (unless another agent holds the conversation)."""

    plugins: list[BasePlugin] = Field(default_factory=list)
    """Plugins applied to every run."""

    resumability_config: ResumabilityConfig | None = None
    events_compaction_config: EventsCompactionConfig | None = None

    @field_validator("name")
    @classmethod
    def _validate_name(cls, value: str) -> str:
        if not value.isidentifier():
            raise ValueError(f"Invalid app name {value!r}: it must be a Python identifier.")
        return value
