"""JWTs verified against a JWKS served on loopback (rotation, forgeries, claims)."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
from collections.abc import AsyncIterator, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import httpx
import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from app.server.security import jwt_tokens
from tests.server.conftest import ClientFactory

PATH = "/apps/scripted/users/alice/sessions"
ISSUER = "https://idp.test/"


class Jwks:
    """A JWKS endpoint on a loopback port whose key set a test may change."""

    def __init__(self) -> None:
        self.keys: list[dict[str, Any]] = []
        self.fetches = 0
        jwks = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                jwks.fetches += 1
                body = json.dumps({"keys": jwks.keys}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/jwks.json"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def publish(self, kid: str, key: rsa.RSAPrivateKey) -> None:
        """Add a key's public half to the set."""
        self.keys.append({**RSAAlgorithm.to_jwk(key.public_key(), as_dict=True), "kid": kid})

    def close(self) -> None:
        """Stop serving."""
        self.server.shutdown()
        self.server.server_close()
        self.thread.join()


def rsa_key() -> rsa.RSAPrivateKey:
    """A fresh 2048-bit RSA key."""
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


@pytest.fixture
def jwks() -> Iterator[Jwks]:
    """A running JWKS server."""
    server = Jwks()
    try:
        yield server
    finally:
        server.close()


@pytest.fixture
async def client(make_client: ClientFactory, jwks: Jwks) -> AsyncIterator[httpx.AsyncClient]:
    """The app with AGENT_SERVICE_AUTH=jwt against the JWKS server."""
    async with make_client(
        auth="jwt", jwt_jwks_url=jwks.url, jwt_issuer=ISSUER, jwt_audience="svc"
    ) as c:
        yield c


def signed(key: rsa.RSAPrivateKey, kid: str, **claims: Any) -> dict[str, str]:
    """Bearer headers for an RS256 token valid for an hour, unless `claims` override."""
    body = {"iss": ISSUER, "aud": "svc", "exp": int(time.time()) + 3600, "sub": "alice", **claims}
    return {"Authorization": "Bearer " + jwt.encode(body, key, "RS256", headers={"kid": kid})}


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def forged_hs256(secret: bytes, kid: str) -> dict[str, str]:
    """An HS256 token whose HMAC key is `secret` (PyJWT itself refuses to make one with a PEM)."""
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT", "kid": kid}).encode())
    claims = {"iss": ISSUER, "aud": "svc", "exp": int(time.time()) + 3600, "sub": "alice"}
    payload = _b64(json.dumps(claims).encode())
    signature = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return {"Authorization": f"Bearer {header}.{payload}.{_b64(signature)}"}


async def test_jwks_tokens_bind_to_their_user(client: httpx.AsyncClient, jwks: Jwks) -> None:
    key = rsa_key()
    jwks.publish("k1", key)
    assert (await client.get(PATH, headers=signed(key, "k1"))).status_code == 200
    assert (await client.get(PATH, headers=signed(key, "k1", sub="bob"))).status_code == 403
    admin = signed(key, "k1", sub="ops", scope="agent-service:admin")
    assert (await client.get(PATH, headers=admin)).status_code == 200
    assert jwks.fetches == 1  # the set is cached


async def test_forged_and_invalid_tokens_are_refused(client: httpx.AsyncClient, jwks: Jwks) -> None:
    key = rsa_key()
    jwks.publish("k1", key)
    public_pem = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    now = int(time.time())
    unsigned = jwt.encode(
        {"iss": ISSUER, "aud": "svc", "exp": now + 60, "sub": "alice"},
        None,
        algorithm="none",
        headers={"kid": "k1"},
    )
    refused = {
        "alg none": {"Authorization": f"Bearer {unsigned}"},
        "HS256 with the RSA public key": forged_hs256(public_pem, "k1"),
        "wrong audience": signed(key, "k1", aud="other"),
        "wrong issuer": signed(key, "k1", iss="https://evil.test/"),
        "expired": signed(key, "k1", exp=now - 120),
        "another key under a known kid": signed(rsa_key(), "k1"),
    }
    for name, headers in refused.items():
        response = await client.get(PATH, headers=headers)
        assert response.status_code == 401, name
        assert response.json()["code"] == "unauthenticated"


async def test_rotation_refetches_the_set_on_an_unknown_kid(
    client: httpx.AsyncClient, jwks: Jwks, monkeypatch: pytest.MonkeyPatch
) -> None:
    old, new = rsa_key(), rsa_key()
    jwks.publish("old", old)
    assert (await client.get(PATH, headers=signed(old, "old"))).status_code == 200
    # Forged kids do not make the server hammer the identity provider.
    for i in range(5):
        assert (await client.get(PATH, headers=signed(new, f"forged-{i}"))).status_code == 401
    assert jwks.fetches == 1
    monkeypatch.setattr(jwt_tokens, "MIN_REFETCH_SECONDS", 0.0)
    jwks.keys = []
    jwks.publish("new", new)
    assert (await client.get(PATH, headers=signed(new, "new"))).status_code == 200
    assert jwks.fetches == 2
