"""InvocationContext: everything one invocation (one run) of an agent tree can reach."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from google.genai import types

from app.agents.live_request_queue import LiveRequestQueue
from app.agents.run_config import RunConfig
from app.artifacts.base_artifact_service import BaseArtifactService
from app.auth.credential_service.base_credential_service import BaseCredentialService
from app.errors import LlmCallsLimitExceededError
from app.memory.base_memory_service import BaseMemoryService
from app.sessions.base_session_service import BaseSessionService
from app.sessions.session import Session

if TYPE_CHECKING:
    from app.agents.base_agent import BaseAgent
    from app.plugins.plugin_manager import PluginManager


@dataclass
class _CallCounter:
    """Model calls made in this invocation; shared by every agent's context copy."""

    count: int = 0


@dataclass
class InvocationContext:
    """The state of one invocation; agents get a copy with their own `agent` and `branch`."""

    invocation_id: str
    agent: BaseAgent
    session: Session
    session_service: BaseSessionService
    plugin_manager: PluginManager
    artifact_service: BaseArtifactService | None = None
    memory_service: BaseMemoryService | None = None
    credential_service: BaseCredentialService | None = None
    user_content: types.Content | None = None
    """The user message that started the invocation."""
    run_config: RunConfig = field(default_factory=RunConfig)
    branch: str | None = None
    """Dotted agent path isolating parallel branches' histories."""
    end_invocation: bool = False
    """Set to stop the invocation after the current step."""
    live_request_queue: LiveRequestQueue | None = None
    resumability_enabled: bool = False
    trace_span: Any = None
    """The running agent's `invoke_agent` span (None when tracing is off): its children's parent."""
    _llm_calls: _CallCounter = field(default_factory=_CallCounter)

    @property
    def app_name(self) -> str:
        """The session's app."""
        return self.session.app_name

    @property
    def user_id(self) -> str:
        """The session's user."""
        return self.session.user_id

    def for_agent(self, agent: BaseAgent, *, branch: str | None = None) -> InvocationContext:
        """Return a copy for `agent` (sharing the session, services and call counter)."""
        return replace(self, agent=agent, branch=self.branch if branch is None else branch)

    def increment_llm_call_count(self) -> None:
        """Count a model call.

        Raises:
            LlmCallsLimitExceededError: more calls than `run_config.max_llm_calls`.
        """
        self._llm_calls.count += 1
        limit = self.run_config.max_llm_calls
        if limit > 0 and self._llm_calls.count > limit:
            raise LlmCallsLimitExceededError(f"Max number of llm calls limit of {limit} exceeded")
