"""GET /metrics after real runs, parsed with prometheus_client's own text parser; X-Request-Id.

Metric values live in the process (as in production), so every assertion compares a scrape
taken after the requests with one taken before.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from app.observability import metrics
from app.runs import RunStatus
from app.server.cli_commands import metrics_exposition
from app.server.settings import Settings
from app.testing.postgres import free_port
from tests.conftest import drop_database

from .conftest import ClientFactory
from .helpers import message, services_of

BASE = "/apps/scripted/users/u1/sessions"
RUN_ROUTE = "/apps/{app}/users/{uid}/sessions/{sid}:run"

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def parse(text: str) -> Samples:
    """Every sample of a Prometheus text exposition, keyed by name and sorted labels."""
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float:
    """One sample's value (0 when the series does not exist yet)."""
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


async def scrape(client: httpx.AsyncClient) -> tuple[Samples, str]:
    response = await client.get("/metrics")
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=")
    return parse(response.text), response.text


async def test_metrics_after_chat_tool_model_error_and_404s(client: httpx.AsyncClient) -> None:
    before, _ = await scrape(client)
    await client.post(BASE, json={"sessionId": "s"})
    assert (await client.post(f"{BASE}/s:run", json={"newMessage": message("chat")})).is_success
    assert (await client.post(f"{BASE}/s:run", json={"newMessage": message("tool")})).is_success
    boom = await client.post(f"{BASE}/s:run", json={"newMessage": message("boom")})
    assert boom.status_code == 200 and "event: error" in boom.text  # in-band: user event stored
    assert (await client.get("/no/such/path/7f3a9c")).status_code == 404
    assert (await client.get(f"{BASE}/missing-5be1d2")).status_code == 404

    after, text = await scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    run = {"app": "scripted", "mode": "run"}
    assert delta("agent_service_runs_started_total", **run) == 3
    assert delta("agent_service_runs_finished_total", **run, status="completed") == 2
    assert delta("agent_service_runs_finished_total", **run, status="error") == 1
    assert delta("agent_service_run_duration_seconds_count", **run) == 3
    assert delta("agent_service_run_first_event_seconds_count", **run) == 2  # boom had none
    assert value(after, "agent_service_active_runs", app="scripted") == 0
    # chat: 1 model call, tool: 2, boom: 1 (failed).
    assert delta("agent_service_model_call_duration_seconds_count", model="scripted") == 4
    assert delta("agent_service_model_call_errors_total", model="scripted", code="ModelError") == 1
    assert delta("agent_service_tool_call_duration_seconds_count", tool="get_weather") == 1
    assert delta("agent_service_tool_call_errors_total", tool="get_weather") == 0
    http = "agent_service_http_requests_total"
    assert delta(http, method="POST", route=RUN_ROUTE, status="200") == 3
    assert delta(http, method="GET", route="unmatched", status="404") == 1
    session_route = "/apps/{app}/users/{uid}/sessions/{sid}"
    assert delta(http, method="GET", route=session_route, status="404") == 1
    assert delta(
        "agent_service_http_request_duration_seconds_count", method="POST", route=RUN_ROUTE
    )
    # Raw paths and ids never become label values.
    assert "7f3a9c" not in text and "missing-5be1d2" not in text and 'sid="' not in text


async def test_queued_runs_gauge_and_a_lost_runs_lease_steal_and_seal(
    client: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    manager = services_of(client).runs
    for sid in ("q", "lost"):
        await client.post(BASE, json={"sessionId": sid})
    queued = asyncio.Event()
    enqueue = manager.store.enqueue

    async def enqueue_and_tell(*args: Any, **kwargs: Any) -> None:
        await enqueue(*args, **kwargs)
        queued.set()

    monkeypatch.setattr(manager.store, "enqueue", enqueue_and_tell)
    before, _ = await scrape(client)
    holder = await manager.begin(("scripted", "u1", "q"), "e-holder")  # the session is busy
    body = {"newMessage": message("chat"), "multitaskStrategy": "enqueue"}
    waiting = asyncio.create_task(client.post(f"{BASE}/q:run", json=body))
    await asyncio.wait_for(queued.wait(), 10)
    while_queued, _ = await scrape(client)
    await manager.finish(holder, RunStatus.COMPLETED)
    assert (await asyncio.wait_for(waiting, 10)).status_code == 200

    # A run of a replica that died: running, its lease long expired. The sweep seals it.
    await manager.store.begin(
        ("scripted", "u1", "lost"), "e-lost", owner="dead-replica", lease_seconds=-60
    )
    await manager.tick()
    events = await client.get(f"{BASE}/lost/runs/e-lost/events")  # ends when the run has
    assert events.status_code == 200
    run = (await client.get(f"{BASE}/lost/runs/e-lost")).json()
    assert run["status"] == "error" and run["error"]["code"] == "run_lost"
    after, _ = await scrape(client)

    def delta(samples: Samples, name: str) -> float:
        return value(samples, name, app="scripted") - value(before, name, app="scripted")

    assert delta(while_queued, "agent_service_queued_runs") == 1
    assert delta(after, "agent_service_queued_runs") == 0
    assert delta(after, "agent_service_run_lease_steals_total") == 1
    assert delta(after, "agent_service_runs_sealed_total") == 1


@pytest.mark.postgres
async def test_database_unavailability_is_counted(
    make_client: ClientFactory, postgres_url: str, pg_db_url: str
) -> None:
    async with make_client(database_url=pg_db_url) as client:
        assert (await client.post(BASE, json={"sessionId": "s1"})).status_code == 201
        before, _ = await scrape(client)
        await drop_database(postgres_url, make_url(pg_db_url).database or "")
        response = await client.get(f"{BASE}/s1")
        assert response.status_code == 503, response.text
        after, _ = await scrape(client)
    name = "agent_service_database_unavailable_total"
    store = "agent_service_session_store_duration_seconds_count"
    for metric in (name, store):
        assert (
            value(after, metric, operation="get_session")
            - value(before, metric, operation="get_session")
            == 1
        )


async def test_every_family_is_exposed_with_help_and_type(client: httpx.AsyncClient) -> None:
    response = await client.get("/metrics")
    families = {f.name: f for f in text_string_to_metric_families(response.text)}
    expected = {
        "agent_service_runs_started": "counter",
        "agent_service_runs_finished": "counter",
        "agent_service_run_duration_seconds": "histogram",
        "agent_service_run_first_event_seconds": "histogram",
        "agent_service_active_runs": "gauge",
        "agent_service_queued_runs": "gauge",
        "agent_service_model_call_duration_seconds": "histogram",
        "agent_service_model_call_errors": "counter",
        "agent_service_tool_call_duration_seconds": "histogram",
        "agent_service_tool_call_errors": "counter",
        "agent_service_tokens": "counter",
        "agent_service_live_connections": "gauge",
        "agent_service_live_audio_chunks": "counter",
        "agent_service_session_store_duration_seconds": "histogram",
        "agent_service_database_unavailable": "counter",
        "agent_service_run_lease_steals": "counter",
        "agent_service_runs_sealed": "counter",
        "agent_service_http_requests": "counter",
        "agent_service_http_request_duration_seconds": "histogram",
    }
    for name, kind in expected.items():
        assert name in families, name
        assert families[name].type == kind, name
        assert families[name].documentation, name


async def test_metrics_off_answers_404_and_records_nothing(make_client: ClientFactory) -> None:
    try:
        async with make_client(metrics=False) as client:
            before = parse(metrics.render().decode())
            await client.post(BASE, json={"sessionId": "s"})
            await client.post(f"{BASE}/s:run", json={"newMessage": message("chat")})
            response = await client.get("/metrics")
            after = parse(metrics.render().decode())
    finally:
        metrics.set_enabled(True)
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    ours = {key: v for key, v in after.items() if key[0].startswith("agent_service_")}
    assert ours == {key: v for key, v in before.items() if key[0].startswith("agent_service_")}
    assert ours  # the families exist; nothing moved


async def test_metrics_port_moves_metrics_off_the_api_port(make_client: ClientFactory) -> None:
    async with make_client(metrics_port=9464) as client:
        assert (await client.get("/metrics")).status_code == 404


async def test_request_id_is_echoed_when_sane_and_generated_otherwise(
    client: httpx.AsyncClient,
) -> None:
    given = await client.get("/healthz", headers={"X-Request-Id": "req-42.a:b"})
    assert given.headers["x-request-id"] == "req-42.a:b"
    generated = await client.get("/healthz")
    other = await client.get("/healthz")
    assert len(generated.headers["x-request-id"]) == 32
    assert generated.headers["x-request-id"] != other.headers["x-request-id"]
    for insane in ("has space", "x" * 129, 'quote"d', "new\nline"[:3] + "\u00e9"):
        try:
            response = await client.get("/healthz", headers={"X-Request-Id": insane})
        except (httpx.LocalProtocolError, UnicodeEncodeError):
            continue  # the client itself refuses to send it
        assert response.headers["x-request-id"] != insane
        assert len(response.headers["x-request-id"]) == 32
    # Errors and streams carry it too.
    assert "x-request-id" in (await client.get("/nope")).headers
    await client.post(BASE, json={"sessionId": "s"})
    run = await client.post(f"{BASE}/s:run", json={"newMessage": message("chat")})
    assert run.headers["content-type"].startswith("text/event-stream")
    assert "x-request-id" in run.headers
    too_big = await client.post(f"{BASE}/s:run", content=b"x" * (2 * 1024 * 1024))
    assert too_big.status_code == 413 and "x-request-id" in too_big.headers


def test_serve_exposes_metrics_on_their_own_port_and_cleans_up() -> None:
    port = free_port()
    settings = Settings(database_url="memory://", metrics_port=port)
    with metrics_exposition(settings, shared=False):
        response = httpx.get(f"http://127.0.0.1:{port}/metrics")
        assert response.status_code == 200
        assert "agent_service_runs_started_total" in response.text
    with pytest.raises(httpx.TransportError):
        httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=2)

    assert metrics.MULTIPROC_DIR_ENV not in os.environ
    with metrics_exposition(Settings(database_url="memory://"), shared=True):
        directory = Path(os.environ[metrics.MULTIPROC_DIR_ENV])
        assert directory.is_dir() and metrics.multiprocess_mode()
    assert metrics.MULTIPROC_DIR_ENV not in os.environ and not directory.exists()
