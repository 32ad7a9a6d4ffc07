"""End-to-end fixtures: `agent-service serve` in a subprocess on a loopback port, on real Postgres.

The server is the production command line (uvicorn with the coalescing protocols of
`app/server/protocols.py`, httptools and uvloop when installed), configured only through the
`AGENT_SERVICE_*` environment, as a deployment would be.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from app.testing.postgres import free_port

AGENTS_FIXTURE = Path(__file__).resolve().parent / "agents_fixture"
REPO_ROOT = Path(__file__).resolve().parents[2]
# The console script installed next to this interpreter (`pip install -e .` puts it there).
AGENT_SERVICE = Path(sys.executable).with_name("agent-service")
STARTUP_TIMEOUT_SECONDS = 60.0
KEEPALIVE_SECONDS = 0.3


@dataclass
class ServerProcess:
    """A running server: its base URL and process."""

    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def log(self) -> str:
        """Return what the server printed so far."""
        return self.log_path.read_text(errors="replace")


@contextmanager
def running_servers(
    database_url: str, tmp_path: Path, *names: str, **env: str
) -> Iterator[list[ServerProcess]]:
    """Run one `agent-service serve` per name on `database_url` until exit.

    The processes start together (start-up dominates multi-process tests).
    """
    command = [str(AGENT_SERVICE), "serve", "--host", "127.0.0.1", "--port"]
    servers: list[ServerProcess] = []
    try:
        for name in names:
            servers.append(start_server(command, database_url, tmp_path / f"{name}.log", **env))
        for running in servers:
            _wait_healthy(running)
        yield servers
    finally:
        for running in servers:
            stop_server(running)


@contextmanager
def running_server(
    database_url: str, tmp_path: Path, name: str = "server", **env: str
) -> Iterator[ServerProcess]:
    """Run one `agent-service serve` on `database_url` until exit."""
    with running_servers(database_url, tmp_path, name, **env) as (running,):
        yield running


@pytest.fixture
def server(pg_db_url: str, tmp_path: Path) -> Iterator[ServerProcess]:
    """Start `agent-service serve` on a fresh migrated database."""
    with running_server(pg_db_url, tmp_path) as running:
        yield running


def start_server(
    command: list[str], db_url: str, log_path: Path, **env_overrides: str
) -> ServerProcess:
    """Start `command + [port]` as a server process on `db_url` (the test agents, short timers)."""
    port = free_port()
    environment = {
        **os.environ,
        "AGENT_SERVICE_DATABASE_URL": db_url,
        "AGENT_SERVICE_AGENTS_DIR": str(AGENTS_FIXTURE),
        "AGENT_SERVICE_KEEPALIVE_SECONDS": str(KEEPALIVE_SECONDS),
        "AGENT_SERVICE_MAX_BODY_BYTES": "65536",
        "AGENT_SERVICE_LOG_LEVEL": "warning",
        **env_overrides,
    }
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [*command, str(port)],
            cwd=REPO_ROOT,
            env=environment,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    return ServerProcess(f"http://127.0.0.1:{port}", process, log_path)


def stop_server(server: ServerProcess) -> None:
    """Stop a server (SIGTERM, then SIGKILL after 10 s) unless it already exited."""
    process = server.process
    if process.poll() is not None:
        return
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def wait_healthy(server: ServerProcess) -> None:
    """Wait until the server answers /healthz (fails the test if it exits first)."""
    _wait_healthy(server)


def _wait_healthy(server: ServerProcess) -> None:
    deadline = time.monotonic() + STARTUP_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            pytest.fail(f"server exited during start-up:\n{server.log()}")
        try:
            if httpx.get(server.base_url + "/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.05)  # process start-up: nothing to wait on but the socket
    pytest.fail(f"server did not become healthy:\n{server.log()}")


@pytest.fixture
async def http(server: ServerProcess) -> AsyncIterator[httpx.AsyncClient]:
    """An httpx client of the running server."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=20) as client:
        yield client
