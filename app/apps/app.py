"""App: a root agent plus the plugins and settings that apply to the whole application."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, field_validator

from app.agents.base_agent import BaseAgent
from app.agents.context_cache_config import ContextCacheConfig
from app.apps._configs import EventsCompactionConfig, ResumabilityConfig
from app.plugins.base_plugin import BasePlugin

__all__ = ["App", "EventsCompactionConfig", "ResumabilityConfig"]


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
    """Make invocations resumable: checkpoints, pause on long-running tools, resume by id."""

    context_cache_config: ContextCacheConfig | None = None
    """Accepted and passed to every invocation; explicit context caches are not created."""

    events_compaction_config: EventsCompactionConfig | None = None
    """Refused: event compaction is not supported (see the README)."""

    @field_validator("name")
    @classmethod
    def _validate_name(cls, value: str) -> str:
        if not value.isidentifier():
            raise ValueError(f"Invalid app name {value!r}: it must be a Python identifier.")
        return value

    @field_validator("events_compaction_config")
    @classmethod
    def _refuse_compaction(cls, value: EventsCompactionConfig | None) -> None:
        if value is not None:
            raise ValueError(
                "events_compaction_config is not supported: this runtime does not summarize "
                "old events. Remove it (sessions keep their full history; bound what the "
                "model sees with LlmAgent(include_contents='none') or a before_model_callback)."
            )
        return None
