"""Credential services."""

from __future__ import annotations

from app.auth.credential_service.base_credential_service import BaseCredentialService
from app.auth.credential_service.in_memory_credential_service import InMemoryCredentialService

__all__ = ["BaseCredentialService", "InMemoryCredentialService"]
