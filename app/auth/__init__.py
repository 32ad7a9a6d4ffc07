"""Auth: credentials tools use to call other services."""

from __future__ import annotations

from app.auth.auth_config import AuthConfig, AuthCredential

__all__ = ["AuthConfig", "AuthCredential"]
