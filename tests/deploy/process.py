"""Run `agent-service serve` as a subprocess and wait for uvicorn to say it is up."""

from __future__ import annotations

import os
import subprocess
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from app.testing.postgres import free_port

STARTUP_TIMEOUT_SECONDS = 30.0
_READY_LINE = "Uvicorn running on "  # logged once the socket listens

# Model credentials of the developer's shell must not reach a test server (no internet).
CREDENTIAL_VARIABLES = (
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "GOOGLE_APPLICATION_CREDENTIALS",
    "GOOGLE_GEMINI_BASE_URL",
)


def offline_env(extra: Mapping[str, str] | None = None) -> dict[str, str]:
    """Return this process's environment without model credentials or AGENT_SERVICE_* settings."""
    env = {
        name: value
        for name, value in os.environ.items()
        if name not in CREDENTIAL_VARIABLES and not name.startswith("AGENT_SERVICE_")
    }
    env.update(extra or {})
    return env


@dataclass
class Served:
    """A server process, its base URL and everything it printed so far."""

    base_url: str
    process: subprocess.Popen[str]
    lines: list[str] = field(default_factory=list)

    def output(self) -> str:
        """Return what the server printed so far."""
        return "".join(self.lines)


@contextmanager
def serve(command: Sequence[str], *, env: Mapping[str, str], cwd: Path) -> Iterator[Served]:
    """Run `command ... --port P` until exit; yield once uvicorn listens on its socket."""
    port = free_port()
    process = subprocess.Popen(
        [*command, "--host", "127.0.0.1", "--port", str(port)],
        cwd=cwd,
        env={**env, "AGENT_SERVICE_LOG_LEVEL": "info"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    served = Served(f"http://127.0.0.1:{port}", process)
    ready = threading.Event()
    started = threading.Event()

    def drain() -> None:
        assert process.stdout is not None
        for line in process.stdout:
            served.lines.append(line)
            if _READY_LINE in line:
                started.set()
                ready.set()
        ready.set()  # the output ended: start-up failed, or the server stopped

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        if not ready.wait(STARTUP_TIMEOUT_SECONDS) or not started.is_set():
            raise AssertionError(f"server did not start:\n{served.output()}")
        yield served
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        reader.join(timeout=5)
        if process.stdout is not None:
            process.stdout.close()
