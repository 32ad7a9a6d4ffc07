"""Authentication end to end: `agent-service serve` with AGENT_SERVICE_AUTH=api_key on Postgres,
keys made by the `agent-service keys` CLI, HTTP via httpx and the live WebSocket via `websockets`.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from app.server.security.api_keys import ApiKeyStore
from app.sessions._engine import create_engine
from app.testing.postgres import free_port
from tests.e2e.conftest import (
    AGENT_SERVICE,
    AGENTS_FIXTURE,
    REPO_ROOT,
    ServerProcess,
    _wait_healthy,
)

GOOD_ORIGIN = "http://frontend.test"


def keys_cli(db_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    """Run `agent-service keys ...` against the database."""
    env = {**os.environ, "AGENT_SERVICE_DATABASE_URL": db_url}
    return subprocess.run(
        [str(AGENT_SERVICE), "keys", *args],
        env=env,
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def make_key(db_url: str, *args: str) -> str:
    """Create a key with the CLI and return it."""
    done = keys_cli(db_url, "create", *args)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip()


async def stored_key(db_url: str, user: str, **options: Any) -> str:
    """Create a key without the CLI (a subprocess each costs seconds on a busy machine)."""
    engine = create_engine(db_url)
    try:
        key, _ = await ApiKeyStore(engine).create(user, **options)
        return key
    finally:
        await engine.dispose()


@pytest.fixture
def auth_server(pg_db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """`agent-service serve` with API keys on (no key cache, so revocation is immediate)."""
    port = free_port()
    env = {
        **os.environ,
        "AGENT_SERVICE_DATABASE_URL": pg_db_url,
        "AGENT_SERVICE_AGENTS_DIR": str(AGENTS_FIXTURE),
        "AGENT_SERVICE_AUTH": "api_key",
        "AGENT_SERVICE_API_KEY_CACHE_SECONDS": "0",
        "AGENT_SERVICE_CORS_ORIGINS": json.dumps([GOOD_ORIGIN]),
        "AGENT_SERVICE_LOG_LEVEL": "info",  # access logs on: they must not show credentials
    }
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [str(AGENT_SERVICE), "serve", "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    running = ServerProcess(f"http://127.0.0.1:{port}", process, log_path)
    try:
        _wait_healthy(running)
        yield running
    finally:
        process.terminate()
        process.wait(timeout=10)


async def close_code(url: str, **options: object) -> tuple[int, str | None]:
    """Open the WebSocket, read until it closes; return the close code and the first frame."""
    first: str | None = None
    async with connect(url, open_timeout=10, **options) as ws:  # type: ignore[arg-type]
        try:
            while True:
                frame = await ws.recv()
                first = first or str(frame)
        except ConnectionClosed as closed:
            assert closed.rcvd is not None
            return closed.rcvd.code, first
    raise AssertionError("unreachable")


# Five `agent-service keys` processes, each a cold start of the CLI: slow on a busy machine.
@pytest.mark.timeout(180)
async def test_api_keys_over_a_real_server(auth_server: ServerProcess, pg_db_url: str) -> None:
    alice = make_key(pg_db_url, "--user", "alice", "--expires-in", "30d")
    bob = await stored_key(pg_db_url, "bob")
    admin = await stored_key(pg_db_url, "ops", admin=True)
    base = "/apps/scripted/users/alice/sessions"
    async with httpx.AsyncClient(base_url=auth_server.base_url, timeout=20) as http:
        as_alice = {"Authorization": f"Bearer {alice}"}
        created = await http.post(base, json={"sessionId": "s1"}, headers=as_alice)
        assert created.status_code == 201, created.text
        assert (await http.get(base, headers={"X-API-Key": bob})).status_code == 403
        assert (await http.get(base)).status_code == 401
        assert (await http.get(base, headers={"Authorization": f"Bearer {admin}"})).is_success

        listed = keys_cli(pg_db_url, "list")
        assert listed.returncode == 0
        for key in (alice, bob, admin):
            assert key.split("_", 2)[2] not in listed.stdout
        alice_id = alice.split("_")[1]
        assert alice_id in listed.stdout
        assert keys_cli(pg_db_url, "revoke", alice_id).returncode == 0
        assert (await http.get(base, headers=as_alice)).status_code == 401
    log = auth_server.log()
    for key in (alice, bob, admin):
        assert key.split("_", 2)[2] not in log


async def test_live_websocket_is_bound_to_its_user(
    auth_server: ServerProcess, pg_db_url: str
) -> None:
    alice = await stored_key(pg_db_url, "alice")
    bob = await stored_key(pg_db_url, "bob")
    ws_base = auth_server.base_url.replace("http://", "ws://")
    url = f"{ws_base}/apps/scripted/users/alice/sessions/nope/live"

    code, frame = await close_code(url)
    assert code == 4401
    assert frame is not None and json.loads(frame)["error"]["code"] == "unauthenticated"
    assert (await close_code(url, additional_headers={"Authorization": f"Bearer {bob}"}))[0] == 4403
    assert (await close_code(f"{url}?access_token={bob}"))[0] == 4403
    # The right user gets past authentication to the route: the session does not exist.
    assert (await close_code(f"{url}?access_token={alice}&modalities=TEXT"))[0] == 4404
    headers = {"Authorization": f"Bearer {alice}"}
    assert (await close_code(url, additional_headers=headers, origin=GOOD_ORIGIN))[0] == 4404
    evil = await close_code(url, additional_headers=headers, origin="http://evil.test")
    assert evil[0] == 4403

    log = auth_server.log()
    assert "WebSocket" in log  # the access log is on, and it never shows the query token
    assert alice.split("_", 2)[2] not in log and bob.split("_", 2)[2] not in log
