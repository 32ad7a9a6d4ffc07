"""Authentication and per-user binding, in process on real Postgres (AGENT_SERVICE_AUTH on).

Every route under `/apps/{app}/users/{uid}` is taken from the app's own route table, so
routes added later are probed too. The live WebSocket and the CLI are covered in
tests/e2e/test_auth_e2e.py; JWTs signed by a JWKS server in tests/server/test_auth_jwt.py.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import AsyncIterator
from datetime import timedelta
from typing import Any

import httpx
import jwt
import pytest
import sqlalchemy as sa

from app.errors import ConfigError
from app.server.security.api_keys import ApiKeyStore, api_keys
from app.server.settings import Settings, load_settings
from app.sessions._engine import create_engine
from tests.server.conftest import ClientFactory

APP = "scripted"
SECRET = "s" * 40
ALICE_SESSION = "alice-s1"


@pytest.fixture
async def client(make_client: ClientFactory, pg_db_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The app with API keys and HS256 JWTs on, over a fresh Postgres database."""
    async with make_client(
        database_url=pg_db_url, auth="api_key,jwt", jwt_secret=SECRET, jwt_audience="svc"
    ) as c:
        yield c


def store(client: httpx.AsyncClient) -> ApiKeyStore:
    """The running app's key store."""
    return client.app.state.services.authenticator.api_keys  # type: ignore[attr-defined]


async def new_key(client: httpx.AsyncClient, user: str, **options: Any) -> dict[str, str]:
    """Create a key and return the headers that send it."""
    key, _ = await store(client).create(user, **options)
    return {"Authorization": f"Bearer {key}"}


async def alice_session(client: httpx.AsyncClient, alice: dict[str, str]) -> None:
    """Give alice a session with one user-scoped artifact-free event history."""
    created = await client.post(
        f"/apps/{APP}/users/alice/sessions", json={"sessionId": ALICE_SESSION}, headers=alice
    )
    assert created.status_code == 201, created.text


def user_routes(client: httpx.AsyncClient) -> list[tuple[str, str]]:
    """(method, concrete path) of every HTTP operation under /apps/{app}/users/{uid}."""
    found = []
    paths = client.app.openapi()["paths"]  # type: ignore[attr-defined]
    for template, operations in paths.items():
        if template.startswith("/apps/{app}/users/{uid}"):
            path = template.replace("{app}", APP).replace("{uid}", "alice")
            path = re.sub(r"\{[^}]+\}", "x", path.replace("{sid}", ALICE_SESSION))
            found.extend((method.upper(), path) for method in sorted(operations))
    return found


async def test_every_user_route_refuses_other_users_and_missing_credentials(
    client: httpx.AsyncClient,
) -> None:
    alice = await new_key(client, "alice")
    bob = await new_key(client, "bob")
    await alice_session(client, alice)
    routes = user_routes(client)
    # list, create, read, PATCH, DELETE, :run, events, artifacts (list, read, versions, delete)
    assert len(routes) >= 10, routes
    for method, path in routes:
        body = {"newMessage": {"role": "user", "parts": [{"text": "hi"}]}}
        for headers, status, code in (
            (bob, 403, "forbidden"),
            ({}, 401, "unauthenticated"),
            ({"Authorization": "Bearer ask_000000000000_" + "x" * 43}, 401, "unauthenticated"),
            ({"Authorization": "Basic YWxpY2U6eA=="}, 401, "unauthenticated"),
        ):
            response = await client.request(method, path, json=body, headers=headers)
            assert response.status_code == status, (method, path, headers, response.text)
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["code"] == code
            if status == 401:
                assert response.headers["www-authenticate"].startswith("Bearer")
    # Nothing bob tried changed alice's session.
    own = await client.get(f"/apps/{APP}/users/alice/sessions/{ALICE_SESSION}", headers=alice)
    assert own.status_code == 200
    assert own.json()["events"] == []


async def test_owner_admin_and_x_api_key_pass(client: httpx.AsyncClient) -> None:
    alice = await new_key(client, "alice")
    admin = await new_key(client, "ops", admin=True)
    await alice_session(client, alice)
    path = f"/apps/{APP}/users/alice/sessions/{ALICE_SESSION}"
    assert (await client.get(path, headers=alice)).status_code == 200
    assert (await client.get(path, headers=admin)).status_code == 200
    x_api_key = {"X-API-Key": alice["Authorization"].removeprefix("Bearer ")}
    assert (await client.get(path, headers=x_api_key)).status_code == 200
    # A proxy's Basic credential does not hide the API key.
    both = {**x_api_key, "Authorization": "Basic YWxpY2U6eA=="}
    assert (await client.get(path, headers=both)).status_code == 200
    run = await client.post(
        path + ":run",
        json={"newMessage": {"role": "user", "parts": [{"text": "hi"}]}},
        headers={**admin, "Accept": "application/json"},
    )
    assert run.status_code == 200, run.text
    assert (await client.delete(path, headers=admin)).status_code == 204


async def test_open_paths_need_no_credential(client: httpx.AsyncClient) -> None:
    for path in ("/healthz", "/readyz", "/openapi.json", "/docs"):
        assert (await client.get(path)).status_code == 200, path
    assert (await client.get("/apps")).status_code == 401


async def test_app_limited_key_sees_and_uses_only_its_apps(client: httpx.AsyncClient) -> None:
    everything = await new_key(client, "alice")
    limited = await new_key(client, "alice", apps=["burst"])
    all_apps = {a["name"] for a in (await client.get("/apps", headers=everything)).json()["apps"]}
    assert len(all_apps) > 1 and "burst" in all_apps
    listed = (await client.get("/apps", headers=limited)).json()["apps"]
    assert [a["name"] for a in listed] == ["burst"]
    assert (await client.get(f"/apps/{APP}", headers=limited)).status_code == 403
    refused = await client.get(f"/apps/{APP}/users/alice/sessions", headers=limited)
    assert refused.status_code == 403
    assert (await client.get("/apps/burst/users/alice/sessions", headers=limited)).is_success


async def test_keys_are_stored_hashed_and_never_logged(
    client: httpx.AsyncClient, pg_db_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    key, info = await store(client).create("alice")
    secret = key.split("_", 2)[2]  # ask_<id>_<secret>; the secret itself may hold "_"
    response = await client.get(
        f"/apps/{APP}/users/alice/sessions", headers={"Authorization": f"Bearer {key}"}
    )
    assert response.status_code == 200
    engine = create_engine(pg_db_url)
    try:
        async with engine.connect() as conn:
            rows = (await conn.execute(sa.select(api_keys))).mappings().all()
    finally:
        await engine.dispose()
    assert [row["key_id"] for row in rows] == [info.key_id]
    dumped = repr([dict(row) for row in rows])
    assert secret not in dumped and key not in dumped
    assert key not in caplog.text and secret not in caplog.text


async def test_expired_and_revoked_keys_are_refused(client: httpx.AsyncClient) -> None:
    path = f"/apps/{APP}/users/alice/sessions"
    expiring, info = await store(client).create("alice", expires_in=timedelta(seconds=1))
    headers = {"Authorization": f"Bearer {expiring}"}
    assert (await client.get(path, headers=headers)).status_code == 200  # now cached
    # Expiry is checked on every request, the cached ones too.
    deadline = info.expires_at
    assert deadline is not None
    while time.time() < deadline:
        time.sleep(min(0.05, max(deadline - time.time(), 0)))
    assert (await client.get(path, headers=headers)).status_code == 401

    revoked = await new_key(client, "alice")
    assert (await client.get(path, headers=revoked)).status_code == 200
    key_id = revoked["Authorization"].split("_")[1]
    assert await store(client).revoke(key_id)
    assert (await client.get(path, headers=revoked)).status_code == 401
    assert not await store(client).revoke(key_id)  # already revoked


async def test_revocation_reaches_other_processes_within_the_cache_time(pg_db_url: str) -> None:
    engine = create_engine(pg_db_url)
    try:
        cli = ApiKeyStore(engine)
        uncached = ApiKeyStore(engine, cache_seconds=0)
        cached = ApiKeyStore(engine, cache_seconds=3600)
        key, info = await cli.create("alice")
        assert (await uncached.verify(key)) is not None
        assert (await cached.verify(key)) is not None
        assert await cli.revoke(info.key_id)
        assert (await uncached.verify(key)) is None
        # Documented bound: another process trusts its cached key until the cache time ends.
        assert (await cached.verify(key)) is not None
        # A wrong secret for a real id is refused (constant-time compare of the digests).
        other, _ = await cli.create("bob")
        forged = other[:-43] + ("A" if other[-43] != "A" else "B") + other[-42:]
        assert (await uncached.verify(forged)) is None
    finally:
        await engine.dispose()


async def test_clients_may_not_write_app_or_temp_state(client: httpx.AsyncClient) -> None:
    alice = await new_key(client, "alice")
    admin = await new_key(client, "ops", admin=True)
    base = f"/apps/{APP}/users/alice/sessions"
    for state in ({"app:theme": "dark"}, {"temp:x": 1}):
        refused = await client.post(base, json={"state": state}, headers=alice)
        assert refused.status_code == 403, refused.text
        assert refused.json()["code"] == "forbidden"
    await alice_session(client, alice)
    session = f"{base}/{ALICE_SESSION}"
    patch = await client.patch(session, json={"stateDelta": {"app:theme": "dark"}}, headers=alice)
    assert patch.status_code == 403
    run = await client.post(session + ":run", json={"stateDelta": {"temp:x": 1}}, headers=alice)
    assert run.status_code == 403
    after = (await client.get(session, headers=alice)).json()
    assert after["events"] == [] and "app:theme" not in after["state"]
    # user: keys are the user's own; an admin may set app: state.
    assert (
        await client.patch(session, json={"stateDelta": {"user:x": 1}}, headers=alice)
    ).is_success
    ok = await client.patch(session, json={"stateDelta": {"app:theme": "dark"}}, headers=admin)
    assert ok.status_code == 200 and ok.json()["state"]["app:theme"] == "dark"


def token(claims: dict[str, Any], key: str = SECRET, algorithm: str = "HS256") -> dict[str, str]:
    """Bearer headers for a JWT with an hour's lifetime (unless `claims` says otherwise)."""
    body = {"aud": "svc", "exp": int(time.time()) + 3600, **claims}
    return {"Authorization": f"Bearer {jwt.encode(body, key, algorithm=algorithm)}"}


async def test_hs256_jwts(client: httpx.AsyncClient) -> None:
    path = f"/apps/{APP}/users/alice/sessions"
    assert (await client.get(path, headers=token({"sub": "alice"}))).status_code == 200
    assert (await client.get(path, headers=token({"sub": "bob"}))).status_code == 403
    admin = token({"sub": "ops", "scope": "openid agent-service:admin"})
    assert (await client.get(path, headers=admin)).status_code == 200
    assert (
        await client.get(path, headers=token({"sub": "ops", "scp": ["agent-service:admin"]}))
    ).is_success
    refused = [
        token({"sub": "alice"}, key="t" * 40),  # another secret
        token({"sub": "alice", "aud": "other"}),
        token({"sub": "alice", "exp": int(time.time()) - 120}),  # past the 30 s leeway
        token({"sub": "alice", "nbf": int(time.time()) + 120}),
        token({"exp": int(time.time()) + 60}),  # no user claim
        {"Authorization": "Bearer " + jwt.encode({"sub": "alice", "aud": "svc"}, SECRET)},  # no exp
        {
            "Authorization": "Bearer "
            + jwt.encode(
                {"sub": "alice", "aud": "svc", "exp": int(time.time()) + 60}, None, algorithm="none"
            )
        },
        {"Authorization": "Bearer not.a.jwt"},
    ]
    for headers in refused:
        response = await client.get(path, headers=headers)
        assert response.status_code == 401, headers


@pytest.mark.parametrize(
    ("env", "named"),
    [
        ({"AGENT_SERVICE_AUTH": "apikey"}, "AGENT_SERVICE_AUTH"),
        ({"AGENT_SERVICE_AUTH": "none,jwt"}, "AGENT_SERVICE_AUTH"),
        ({"AGENT_SERVICE_AUTH": "jwt"}, "AGENT_SERVICE_JWT_SECRET"),
        ({"AGENT_SERVICE_AUTH": "jwt", "AGENT_SERVICE_JWT_SECRET": "short"}, "JWT_SECRET"),
        (
            {"AGENT_SERVICE_AUTH": "api_key", "AGENT_SERVICE_DATABASE_URL": "memory://"},
            "AGENT_SERVICE_DATABASE_URL",
        ),
        ({"AGENT_SERVICE_API_KEY_CACHE_SECONDS": "-1"}, "AGENT_SERVICE_API_KEY_CACHE_SECONDS"),
    ],
)
def test_bad_auth_settings_fail_at_start_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], named: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=named):
        load_settings()


def test_auth_values_parse() -> None:
    assert Settings().auth_methods == frozenset()
    assert Settings(auth="API_KEY, jwt").auth_methods == {"api_key", "jwt"}


@pytest.mark.parametrize(("host", "warns"), [("0.0.0.0", True), ("127.0.0.1", False)])
async def test_warns_when_open_on_a_public_interface(
    make_client: ClientFactory, caplog: pytest.LogCaptureFixture, host: str, warns: bool
) -> None:
    caplog.set_level(logging.WARNING, logger="app.server.app")
    async with make_client(host=host):
        pass
    assert ("authentication is off" in caplog.text) is warns
