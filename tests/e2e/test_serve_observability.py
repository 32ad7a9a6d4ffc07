"""`agent-service serve --workers 2` (real processes): one metrics view, JSON logs, no secrets."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from sqlalchemy.engine import make_url

from app.testing.postgres import free_port
from tests.conftest import create_database, drop_database, run_async
from tests.server.test_metrics import Samples, parse, value

from .conftest import REPO_ROOT

# Three interpreters import the whole app: on a busy 2-core host that alone took 20 s.
STARTUP_SECONDS = 120.0
pytestmark = [pytest.mark.e2e, pytest.mark.timeout(STARTUP_SECONDS + 60)]

API_KEY = "AIzaSyD9x8W7v6U5t4S3r2Q1p0OnMlKjIhGfEdC"
JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhbGljZSIsImV4cCI6NDEwMjQ0NDgwMH0."
    "VGhpc0lzTm90QVJlYWxTaWduYXR1cmVBdEFsbA"
)
DB_PASSWORD = "Db-Secret-7c21e9"

AGENT_SOURCE = textwrap.dedent(
    '''
    """An app whose tool logs its credentials, as careless tools do."""

    from __future__ import annotations

    import logging
    import os
    from typing import Any

    from app.agents import LlmAgent
    from app.errors import ModelError
    from app.models import LlmRequest
    from app.testing import ScriptedModel, function_call

    logger = logging.getLogger("app.example.obs")


    def lookup(city: str) -> dict[str, Any]:
        """Look a city up in a backend."""
        logger.warning(
            "calling backend key=%s db=%s api_key %s",
            os.environ["GOOGLE_API_KEY"],
            os.environ["AGENT_SERVICE_DATABASE_URL"],
            os.environ["GOOGLE_API_KEY"],
        )
        return {"city": city}


    def respond(request: LlmRequest) -> Any:
        last = request.contents[-1]
        if last.parts and last.parts[0].function_response:
            return "done"
        text = last.parts[0].text or ""
        if text.startswith("boom"):
            return ModelError("the model backend is down", status=503)
        if text.startswith("tool"):
            return function_call("lookup", {"city": "Paris"})
        return "ok"


    root_agent = LlmAgent(
        name="obs", model=ScriptedModel(responses=[respond] * 10_000), tools=[lookup]
    )
    '''
)


@dataclass
class Served:
    base_url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def stop(self) -> str:
        """SIGTERM the supervisor (it stops its workers); return everything logged."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        return self.log_path.read_text(errors="replace")


@pytest.fixture(scope="module")
def served(
    postgres_url: str, pg_template: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """`agent-service serve --workers 2`, JSON logs at info, a database URL with a password.

    One server for the module: starting three interpreters is the slow part.
    """
    tmp_path = tmp_path_factory.mktemp("serve-observability")
    name = f"t_{uuid.uuid4().hex[:16]}"
    pg_db_url = run_async(lambda: create_database(postgres_url, name, template=pg_template))
    agents = tmp_path / "agents"
    (agents / "obs").mkdir(parents=True)
    (agents / "obs" / "agent.py").write_text(AGENT_SOURCE)
    url = make_url(pg_db_url).set(password=DB_PASSWORD)  # the test cluster trusts any password
    port = free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("OTEL_", "PROMETHEUS_"))},
        "AGENT_SERVICE_DATABASE_URL": url.render_as_string(hide_password=False),
        "AGENT_SERVICE_AGENTS_DIR": str(agents),
        "AGENT_SERVICE_LOG_FORMAT": "json",
        "AGENT_SERVICE_LOG_LEVEL": "info",
        "GOOGLE_API_KEY": API_KEY,
    }
    log_path = tmp_path / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, "-m", "app.cli", "serve", "--workers", "2", "--port", str(port)],
            cwd=REPO_ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    running = Served(f"http://127.0.0.1:{port}", process, log_path)
    try:
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            if process.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"server did not start:\n{running.stop()}")
            try:
                if httpx.get(running.base_url + "/readyz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # process start-up: nothing to wait on but the socket
        yield running
    finally:
        running.stop()
        run_async(lambda: drop_database(postgres_url, name))


def run(base_url: str, sid: str, text: str, request_id: str) -> httpx.Response:
    # A new connection per request, so that both workers get some.
    return httpx.post(
        f"{base_url}/apps/obs/users/u/sessions/{sid}:run",
        json={"newMessage": {"role": "user", "parts": [{"text": text}]}},
        headers={"x-request-id": request_id},
        timeout=20,
    )


def scrape(base: str) -> Samples:
    response = httpx.get(f"{base}/metrics")  # a new connection: either worker may answer
    assert response.status_code == 200
    return parse(response.text)


def test_two_workers_report_one_consistent_view(served: Served) -> None:
    base = served.base_url
    before = scrape(base)
    assert httpx.post(f"{base}/apps/obs/users/u/sessions", json={"sessionId": "m1"}).is_success
    assert run(base, "m1", "chat", "rid-chat").status_code == 200
    assert run(base, "m1", "tool", "rid-tool").status_code == 200
    assert run(base, "m1", "boom", "rid-boom").status_code == 200  # an in-band error
    assert httpx.get(f"{base}/no/such/path").status_code == 404

    for _ in range(6):
        after = scrape(base)

        def delta(name: str, after: Samples = after, **labels: str) -> float:
            return value(after, name, **labels) - value(before, name, **labels)

        labels = {"app": "obs", "mode": "run"}
        assert delta("agent_service_runs_started_total", **labels) == 3
        assert delta("agent_service_runs_finished_total", **labels, status="completed") == 2
        assert delta("agent_service_runs_finished_total", **labels, status="error") == 1
        errors = {"model": "scripted", "code": "ModelError"}
        assert delta("agent_service_model_call_errors_total", **errors) == 1
        assert delta("agent_service_tool_call_duration_seconds_count", tool="lookup") == 1
        assert value(after, "agent_service_active_runs", app="obs") == 0
        unmatched = {"method": "GET", "route": "unmatched", "status": "404"}
        assert delta("agent_service_http_requests_total", **unmatched) == 1
        store = "agent_service_session_store_duration_seconds_count"
        assert delta(store, operation="append_event") == 7  # 3 user events, 4 agent events
        assert delta(store, operation="create_session") == 1


def test_json_logs_carry_the_ids_and_never_a_secret(served: Served) -> None:
    base = served.base_url
    headers = {"authorization": f"Bearer {JWT}"}
    assert httpx.post(f"{base}/apps/obs/users/u/sessions", json={"sessionId": "s1"}).is_success
    assert run(base, "s1", "tool", "rid-leak").status_code == 200
    assert httpx.get(f"{base}/healthz?access_token={JWT}", headers=headers).status_code == 200
    assert httpx.get(f"{base}/apps/obs/users/u/sessions/{JWT}", headers=headers).status_code == 404

    text = served.log_path.read_text(errors="replace")  # handlers write each line at once

    records = [json.loads(line) for line in text.splitlines() if line.strip()]
    assert all({"time", "level", "logger", "message"} <= r.keys() for r in records)
    [tool_line] = [
        r
        for r in records
        if r["message"].startswith("calling backend") and r.get("request_id") == "rid-leak"
    ]
    assert tool_line["request_id"] == "rid-leak"
    assert (tool_line["app"], tool_line["user"], tool_line["session"]) == ("obs", "u", "s1")
    assert tool_line["invocation"].startswith("e-")
    assert "key=***" in tool_line["message"]
    access = [r for r in records if r["logger"] == "uvicorn.access"]
    assert any("/healthz?access_token=***" in r["message"] for r in access), access
    assert all(r.get("request_id") for r in access)
    for secret in (API_KEY, JWT, DB_PASSWORD):
        assert secret not in text
