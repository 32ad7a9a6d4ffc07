"""CallbackContext: what agent and model callbacks may read and change."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from google.genai import types

from app.agents.readonly_context import ReadonlyContext
from app.events.event_actions import EventActions
from app.sessions.state import State

if TYPE_CHECKING:
    from app.agents.invocation_context import InvocationContext
    from app.auth.auth_config import AuthConfig, AuthCredential


class CallbackContext(ReadonlyContext):
    """Writable state (carried by the next event as a delta) and artifact access."""

    def __init__(
        self, invocation_context: InvocationContext, *, event_actions: EventActions | None = None
    ) -> None:
        super().__init__(invocation_context)
        self._event_actions = event_actions or EventActions()
        self._state = State(invocation_context.session.state, self._event_actions.state_delta)

    @property
    def state(self) -> State:  # type: ignore[override]
        """The session state; writes are recorded in `actions.state_delta`."""
        return self._state

    @property
    def actions(self) -> EventActions:
        """The actions the resulting event will carry."""
        return self._event_actions

    @property
    def invocation_context(self) -> InvocationContext:
        """The full invocation context."""
        return self._invocation_context

    async def load_artifact(self, filename: str, version: int | None = None) -> types.Part | None:
        """Load an artifact of this session (or a `user:` one)."""
        service = self._artifact_service()
        return await service.load_artifact(
            app_name=self.app_name,
            user_id=self.user_id,
            session_id=self._invocation_context.session.id,
            filename=filename,
            version=version,
        )

    async def save_artifact(
        self, filename: str, artifact: types.Part, custom_metadata: dict[str, Any] | None = None
    ) -> int:
        """Save a new artifact version; the event records it in `artifact_delta`."""
        service = self._artifact_service()
        version = await service.save_artifact(
            app_name=self.app_name,
            user_id=self.user_id,
            session_id=self._invocation_context.session.id,
            filename=filename,
            artifact=artifact,
            custom_metadata=custom_metadata,
        )
        self._event_actions.artifact_delta[filename] = version
        return version

    async def list_artifacts(self) -> list[str]:
        """List the artifact names visible to this session."""
        service = self._artifact_service()
        return await service.list_artifact_keys(
            app_name=self.app_name,
            user_id=self.user_id,
            session_id=self._invocation_context.session.id,
        )

    async def load_credential(self, auth_config: AuthConfig) -> AuthCredential | None:
        """Load a stored credential for this app and user."""
        service = self._invocation_context.credential_service
        if service is None:
            raise ValueError("No credential service is configured.")
        return await service.load_credential(auth_config, self)

    async def save_credential(self, auth_config: AuthConfig) -> None:
        """Store `auth_config.exchanged_auth_credential` for this app and user."""
        service = self._invocation_context.credential_service
        if service is None:
            raise ValueError("No credential service is configured.")
        await service.save_credential(auth_config, self)

    def _artifact_service(self) -> Any:
        service = self._invocation_context.artifact_service
        if service is None:
            raise ValueError("No artifact service is configured.")
        return service
