"""A live session's metrics and spans: real uvicorn, the real `websockets` client."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from websockets.asyncio.client import connect

from app.observability import tracing
from tests.server.test_metrics import Samples, parse, value

from .test_live_ws import CHUNK_BYTES, LiveServer, close_of, frames_until, server

pytestmark = pytest.mark.e2e

__all__ = ["server"]  # the fixture, imported from the live suite

LIVE = {"app": "live", "mode": "live"}


@pytest.fixture
def exporter() -> Iterator[InMemorySpanExporter]:
    memory = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    tracing.use_provider(provider, capture=False)
    try:
        yield memory
    finally:
        tracing.use_provider(None)
        provider.shutdown()


async def scrape(server: LiveServer) -> Samples:
    async with httpx.AsyncClient(base_url=server.base) as http:
        response = await http.get("/metrics")
    assert response.status_code == 200
    return parse(response.text)


async def test_live_session_metrics_and_per_turn_spans(
    server: LiveServer, exporter: InMemorySpanExporter
) -> None:
    server.model.responses.extend(["Sunny and warm", "Still sunny"])
    before = await scrape(server)
    chunks = [b"\x01\x00" * (CHUNK_BYTES // 2)] * 5

    async with connect(server.url(), additional_headers={"x-request-id": "live-rid-1"}) as ws:
        assert ws.response is not None
        assert ws.response.headers["x-request-id"] == "live-rid-1"
        for chunk in chunks:
            await ws.send(chunk)
        await ws.send(json.dumps({"audioStreamEnd": True}))
        first = await frames_until(ws, "live_agent turn_complete")
        during = await scrape(server)
        await ws.send(json.dumps({"content": {"role": "user", "parts": [{"text": "again"}]}}))
        second = await frames_until(ws, "live_agent turn_complete")
        await ws.send(json.dumps({"close": True}))
        code, _, _ = await close_of(ws)
    assert code == 1000
    await server.log.wait_closed()
    after = await scrape(server)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    audio_out = sum(
        1
        for frame in first + second
        for part in (frame.get("content") or {}).get("parts", [])
        if "inlineData" in part
    )
    assert audio_out > 0
    assert value(during, "agent_service_live_connections") == 1
    assert value(during, "agent_service_active_runs", app="live") == 1
    assert value(after, "agent_service_live_connections") == 0
    assert value(after, "agent_service_active_runs", app="live") == 0
    assert delta("agent_service_live_audio_chunks_total", direction="in") == len(chunks)
    assert delta("agent_service_live_audio_chunks_total", direction="out") == audio_out
    assert delta("agent_service_runs_started_total", **LIVE) == 1
    assert delta("agent_service_runs_finished_total", **LIVE, status="completed") == 1
    assert delta("agent_service_run_first_event_seconds_count", **LIVE) == 1
    candidates = {"app": "live", "model": "scripted", "kind": "candidates"}
    assert delta("agent_service_tokens_total", **candidates) == 3 + 2  # the two replies' words

    spans = exporter.get_finished_spans()
    [connection] = [s for s in spans if s.name.startswith("WS ")]
    assert connection.name == "WS /apps/{app}/users/{uid}/sessions/{sid}/live"
    [agent] = [s for s in spans if s.name == "invoke_agent live_agent"]
    turns = [s for s in spans if s.name == "chat scripted"]
    assert agent.parent is not None and agent.parent.span_id == connection.context.span_id
    assert len(turns) == 2
    assert all(t.parent is not None and t.parent.span_id == agent.context.span_id for t in turns)
    assert {t.context.trace_id for t in turns} == {connection.context.trace_id}
