"""Who is calling this service: API keys, JWTs, and the binding of callers to their paths.

Not to be confused with `app.auth`, the credential service agents use to call other services.
"""

from __future__ import annotations

from app.server.security.principal import ADMIN_SCOPE, Principal

__all__ = ["ADMIN_SCOPE", "Principal"]
