"""Authenticator: find the credential of a request and turn it into a Principal."""

from __future__ import annotations

from collections.abc import Mapping

from app.server.security.api_keys import ApiKeyStore, looks_like_api_key
from app.server.security.jwt_tokens import JwtVerifier
from app.server.security.principal import Principal


class Authenticator:
    """Verify API keys and/or JWTs, whichever `AGENT_SERVICE_AUTH` enables."""

    def __init__(self, api_keys: ApiKeyStore | None, jwts: JwtVerifier | None) -> None:
        self.api_keys = api_keys
        self.jwts = jwts

    async def authenticate(self, credential: str) -> Principal | None:
        """Return the caller a credential names, or None when it is not valid."""
        if looks_like_api_key(credential):
            return await self.api_keys.verify(credential) if self.api_keys else None
        return await self.jwts.verify(credential) if self.jwts else None


def credential_from_headers(headers: Mapping[bytes, bytes]) -> str | None:
    """Return `Authorization: Bearer <c>` or `X-API-Key: <c>`, else None."""
    authorization = headers.get(b"authorization")
    if authorization is not None:
        # Another scheme (e.g. Basic, set by a proxy) is not ours: fall through to X-API-Key.
        scheme, _, value = authorization.decode("latin-1").partition(" ")
        if scheme.lower() == "bearer" and value.strip():
            return value.strip()
    api_key = headers.get(b"x-api-key")
    if api_key is None:
        return None
    return api_key.decode("latin-1").strip() or None
