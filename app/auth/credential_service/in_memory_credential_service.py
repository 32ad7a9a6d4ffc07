"""InMemoryCredentialService: credentials in a dict (tests and demos; not encrypted)."""

from __future__ import annotations

from typing import Any

from app.auth.auth_config import AuthConfig, AuthCredential
from app.auth.credential_service.base_credential_service import BaseCredentialService


class InMemoryCredentialService(BaseCredentialService):
    """Keeps credentials keyed by (app, user, credential key) in process memory."""

    def __init__(self) -> None:
        self._store: dict[tuple[str, str, str], AuthCredential] = {}

    async def load_credential(
        self, auth_config: AuthConfig, callback_context: Any
    ) -> AuthCredential | None:
        """Return the stored credential, or None."""
        key = (callback_context.app_name, callback_context.user_id, auth_config.credential_key)
        return self._store.get(key)

    async def save_credential(self, auth_config: AuthConfig, callback_context: Any) -> None:
        """Store the exchanged credential (a no-op when there is none)."""
        credential = auth_config.exchanged_auth_credential
        if credential is None:
            return
        key = (callback_context.app_name, callback_context.user_id, auth_config.credential_key)
        self._store[key] = credential
