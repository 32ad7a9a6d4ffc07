"""InvocationContext: everything one invocation (one run) of an agent tree can reach."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from google.genai import types
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, field_validator

from app.agents.context_cache_config import ContextCacheConfig
from app.agents.live_request_queue import LiveRequestQueue
from app.agents.run_config import RunConfig
from app.apps._configs import EventsCompactionConfig, ResumabilityConfig
from app.artifacts.base_artifact_service import BaseArtifactService
from app.auth.credential_service.base_credential_service import BaseCredentialService
from app.errors import LlmCallsLimitExceededError
from app.events.event import Event
from app.memory.base_memory_service import BaseMemoryService
from app.plugins.plugin_manager import PluginManager
from app.sessions.base_session_service import BaseSessionService
from app.sessions.session import Session

if TYPE_CHECKING:
    from app.agents.base_agent import BaseAgent, BaseAgentState


class _CallCounter:
    """Model calls made in this invocation; shared by every agent's context copy."""

    __slots__ = ("count",)

    def __init__(self) -> None:
        self.count = 0


class InvocationContext(BaseModel):
    """The state of one invocation; agents get a copy with their own `agent` and `branch`.

    Copies share the session, the services, the call counter and the `agent_states` /
    `end_of_agents` records (a shallow `model_copy`).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True, extra="forbid")

    invocation_id: str
    """The invocation's id (`e-<uuid>`)."""
    if TYPE_CHECKING:
        agent: BaseAgent
    else:
        agent: Any
    """The agent this copy of the context runs."""
    session: Session
    session_service: BaseSessionService
    plugin_manager: PluginManager = Field(default_factory=PluginManager)
    """The Runner's plugins (an empty manager when built directly)."""
    artifact_service: BaseArtifactService | None = None
    memory_service: BaseMemoryService | None = None
    credential_service: BaseCredentialService | None = None
    context_cache_config: ContextCacheConfig | None = None
    user_content: types.Content | None = None
    """The user message that started the invocation."""
    run_config: RunConfig = Field(default_factory=RunConfig)
    branch: str | None = None
    """Dotted agent path isolating parallel branches' histories."""
    end_invocation: bool = False
    """Set to stop the invocation after the current step."""
    live_request_queue: LiveRequestQueue | None = None
    resumability_config: ResumabilityConfig | None = None
    """Whether the invocation records checkpoints and can be resumed (from the App)."""
    events_compaction_config: EventsCompactionConfig | None = None
    agent_states: dict[str, dict[str, Any]] = Field(default_factory=dict)
    """Agent name -> the checkpoint it resumes from (resumable invocations)."""
    end_of_agents: dict[str, bool] = Field(default_factory=dict)
    """Agent name -> True once the agent finished in this invocation."""
    trace_span: Any = None
    """The running agent's `invoke_agent` span (None when tracing is off): its children's parent."""
    _llm_calls: _CallCounter = PrivateAttr(default_factory=_CallCounter)

    @field_validator("run_config", mode="before")
    @classmethod
    def _default_run_config(cls, value: Any) -> Any:
        return RunConfig() if value is None else value

    @property
    def app_name(self) -> str:
        """The session's app."""
        return self.session.app_name

    @property
    def user_id(self) -> str:
        """The session's user."""
        return self.session.user_id

    @property
    def is_resumable(self) -> bool:
        """True when the app is resumable: workflow agents record checkpoints."""
        return self.resumability_config is not None and self.resumability_config.is_resumable

    def for_agent(self, agent: BaseAgent, *, branch: str | None = None) -> InvocationContext:
        """Return a copy for `agent` (sharing the session, services and call counter)."""
        return self.model_copy(
            update={"agent": agent, "branch": self.branch if branch is None else branch}
        )

    def set_agent_state(
        self,
        agent_name: str,
        *,
        agent_state: BaseAgentState | None = None,
        end_of_agent: bool = False,
    ) -> None:
        """Record an agent's checkpoint, or that it finished, or (neither given) forget both."""
        if end_of_agent:
            self.end_of_agents[agent_name] = True
            self.agent_states.pop(agent_name, None)
        elif agent_state is not None:
            self.agent_states[agent_name] = agent_state.model_dump(mode="json")
            self.end_of_agents[agent_name] = False
        else:
            self.end_of_agents.pop(agent_name, None)
            self.agent_states.pop(agent_name, None)

    def reset_sub_agent_states(self, agent_name: str) -> None:
        """Forget the checkpoints of every descendant of `agent_name` (a loop's next round)."""
        agent = self.agent.find_agent(agent_name) if self.agent is not None else None
        if agent is None:
            return
        for sub_agent in agent.sub_agents:
            self.set_agent_state(sub_agent.name)
            self.reset_sub_agent_states(sub_agent.name)

    def populate_invocation_agent_states(self) -> None:
        """Rebuild `agent_states`/`end_of_agents` from this invocation's stored events.

        An agent that produced content without recording a checkpoint gets an empty one, so
        a resumed run knows it had started. No-op unless the invocation is resumable.
        """
        if not self.is_resumable:
            return
        for event in self._get_events(current_invocation=True):
            name = event.author
            if event.actions.end_of_agent:
                self.end_of_agents[name] = True
                self.agent_states.pop(name, None)
            elif event.actions.agent_state is not None:
                self.agent_states[name] = event.actions.agent_state
                self.end_of_agents[name] = False
            elif name != "user" and event.content and not self.agent_states.get(name):
                self.agent_states[name] = {}
                self.end_of_agents[name] = False

    def should_pause_invocation(self, event: Event) -> bool:
        """True when a resumable invocation stops after `event`: it calls a long-running tool.

        A paused invocation is resumed later with the tool's response; the agents after the
        pausing one (and its ancestors) do not run meanwhile.
        """
        if not self.is_resumable or not event.long_running_tool_ids:
            return False
        return any(call.id in event.long_running_tool_ids for call in event.get_function_calls())

    def _get_events(
        self, *, current_invocation: bool = False, current_branch: bool = False
    ) -> list[Event]:
        """The session's events, optionally only this invocation's and/or this branch's."""
        events = self.session.events
        if current_invocation:
            events = [e for e in events if e.invocation_id == self.invocation_id]
        if current_branch:
            events = [e for e in events if e.branch == self.branch]
        return events

    def increment_llm_call_count(self) -> None:
        """Count a model call.

        Raises:
            LlmCallsLimitExceededError: more calls than `run_config.max_llm_calls`.
        """
        self._llm_calls.count += 1
        limit = self.run_config.max_llm_calls
        if limit > 0 and self._llm_calls.count > limit:
            raise LlmCallsLimitExceededError(f"Max number of llm calls limit of {limit} exceeded")
