"""BaseCredentialService: stores credentials per app, user and credential key."""

from __future__ import annotations

import abc
from typing import Any

from app.auth.auth_config import AuthConfig, AuthCredential


class BaseCredentialService(abc.ABC):
    """Loads and saves the credentials tools obtain.

    `callback_context` is a CallbackContext (or ToolContext); only its `app_name` and
    `user_id` are used.
    """

    @abc.abstractmethod
    async def load_credential(
        self, auth_config: AuthConfig, callback_context: Any
    ) -> AuthCredential | None:
        """Return the stored credential for `auth_config.credential_key`, or None."""

    @abc.abstractmethod
    async def save_credential(self, auth_config: AuthConfig, callback_context: Any) -> None:
        """Store `auth_config.exchanged_auth_credential` under its credential key."""
