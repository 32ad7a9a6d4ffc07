"""JWT verification with PyJWT: an HS256 shared secret, or the public keys of a JWKS URL.

Only the configured family is accepted: HS256 with a secret; asymmetric algorithms (RSA, EC,
EdDSA) with a JWKS. So `alg: none` never verifies, and an HS256 token "signed" with an RSA
public key is refused by its algorithm before any key is tried.

JWKS keys are cached by `kid`; a token with an unknown `kid` refetches the set (key rotation),
at most once per `MIN_REFETCH_SECONDS` so forged `kid`s cannot hammer the identity provider.
The fetch (blocking urllib inside PyJWKClient) runs in a worker thread, never on the loop.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any

import jwt
from jwt import PyJWK, PyJWKClient

from app.server.security.principal import ADMIN_SCOPE, Principal

logger = logging.getLogger(__name__)

HMAC_ALGORITHMS = ["HS256"]
ASYMMETRIC_ALGORITHMS = [
    "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "ES512", "EdDSA",
]  # fmt: skip
MIN_REFETCH_SECONDS = 5.0
JWKS_TIMEOUT_SECONDS = 5


class JwtVerifier:
    """Turn a bearer JWT into a Principal, or None when it is not valid."""

    def __init__(
        self,
        *,
        secret: str | None = None,
        jwks_url: str | None = None,
        issuer: str | None = None,
        audience: str | None = None,
        user_claim: str = "sub",
        leeway_seconds: float = 30.0,
    ) -> None:
        self._secret = secret
        self._jwks = None
        if jwks_url:
            # Caching is ours (by kid, in _keys): the client only fetches.
            self._jwks = PyJWKClient(
                jwks_url, cache_keys=False, cache_jwk_set=False, timeout=JWKS_TIMEOUT_SECONDS
            )
        self._keys: dict[str, PyJWK] = {}
        self._last_fetch = -MIN_REFETCH_SECONDS
        self._fetch_lock = asyncio.Lock()
        self._issuer = issuer
        self._audience = audience
        self._user_claim = user_claim
        self._leeway = leeway_seconds

    async def verify(self, token: str) -> Principal | None:
        """Return the token's caller, or None (bad signature, claims, algorithm or key)."""
        try:
            header = jwt.get_unverified_header(token)
            key: Any
            if self._jwks is None:
                key, algorithms = self._secret, HMAC_ALGORITHMS
            else:
                key, algorithms = await self._signing_key(header.get("kid")), ASYMMETRIC_ALGORITHMS
                if key is None:
                    return None
            if header.get("alg") not in algorithms:
                return None
            claims = jwt.decode(
                token,
                key,
                algorithms=algorithms,
                audience=self._audience,
                issuer=self._issuer,
                leeway=self._leeway,
                options={"require": ["exp", self._user_claim]},
            )
        except jwt.PyJWTError as exc:
            logger.debug("jwt refused: %s", type(exc).__name__)
            return None
        user = claims.get(self._user_claim)
        if not isinstance(user, str) or not 0 < len(user) <= 128:
            return None
        return Principal(user_id=user, admin=ADMIN_SCOPE in _scopes(claims))

    async def _signing_key(self, kid: object) -> PyJWK | None:
        if not isinstance(kid, str):
            return None
        key = self._keys.get(kid)
        if key is not None:
            return key
        async with self._fetch_lock:
            key = self._keys.get(kid)  # fetched while we waited
            if key is None and time.monotonic() - self._last_fetch >= MIN_REFETCH_SECONDS:
                await self._refetch()
                key = self._keys.get(kid)
        return key

    async def _refetch(self) -> None:
        assert self._jwks is not None
        self._last_fetch = time.monotonic()
        try:
            keys = await asyncio.to_thread(self._jwks.get_signing_keys, True)
        except jwt.PyJWKClientError as exc:
            logger.warning("jwks fetch failed: %s", exc)
            return
        self._keys = {k.key_id: k for k in keys if k.key_id}


def _scopes(claims: dict[str, Any]) -> set[str]:
    found: set[str] = set()
    for name in ("scope", "scp"):
        value = claims.get(name)
        if isinstance(value, str):
            found.update(value.split())
        elif isinstance(value, list):
            found.update(v for v in value if isinstance(v, str))
    return found
