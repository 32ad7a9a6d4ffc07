"""CPU per HTTP run with observability off, metrics only (the default), and metrics + tracing.

The whole app runs in this process (ASGI transport, `memory://` store, the bench agent), so
the number is the process's CPU time per run, our code only: no sockets, no Postgres, no
load generator competing for the cores. Modes alternate round by round (the machine is
shared and noisy, so each mode goes first in turn) and the fastest and median rounds of each
mode are reported: the fastest is the one least disturbed by other processes. "traced"
samples every trace and exports it over OTLP/HTTP (protobuf) through the SDK's batch
processor to a sink in this process: the encoding and the export thread count, the sink's
own work is excluded. "sampled" is the same with `parentbased_traceidratio` at 10%.

    .venv/bin/python benchmarks/observability_overhead.py [--runs 300] [--rounds 7]

`benchmarks/http_load.py --observability off|metrics|traced` measures the same over real
sockets and Postgres (noisier on a shared machine).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx

from app.observability import metrics, tracing
from app.server.app import create_app
from app.server.settings import Settings

AGENTS = Path(__file__).resolve().parent / "bench_agents"
BASE = "/apps/bench_agent/users/u/sessions"
MODES = ("off", "metrics", "traced", "sampled")


class _Sink(BaseHTTPRequestHandler):
    cpu = 0.0

    def do_POST(self) -> None:
        started = time.thread_time()
        self.rfile.read(int(self.headers.get("content-length", "0")))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()
        _Sink.cpu += time.thread_time() - started

    def log_message(self, format: str, *args: Any) -> None:
        return


def _tracer_provider(endpoint: str, ratio: float = 1.0) -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased

    sampler = ALWAYS_ON if ratio >= 1 else ParentBased(TraceIdRatioBased(ratio))
    provider = TracerProvider(sampler=sampler)
    provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=endpoint)))
    return provider


async def _round(client: httpx.AsyncClient, text: str, runs: int, sid: str) -> float:
    await client.post(BASE, json={"sessionId": sid})
    body = {"newMessage": {"role": "user", "parts": [{"text": text}]}, "streaming": True}
    started = time.process_time()
    for _ in range(runs):
        response = await client.post(f"{BASE}/{sid}:run", json=body)
        assert response.status_code == 200, response.text
    return (time.process_time() - started) / runs * 1000


async def main(runs: int, rounds: int) -> None:
    """Measure and print ms of CPU per run for each mode and workload."""
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{sink.server_port}/v1/traces"
    providers = {"traced": _tracer_provider(endpoint), "sampled": _tracer_provider(endpoint, 0.1)}
    app = create_app(Settings(database_url="memory://", agents_dir=AGENTS, log_level="warning"))
    results: dict[tuple[str, str], list[float]] = {}
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
            for text in ("chat", "tool"):  # warm-up: imports, caches, first spans
                await _round(client, text, 20, f"warm-{text}")
            for r in range(rounds):
                for mode in MODES[r % 4 :] + MODES[: r % 4]:  # each mode goes first in turn
                    metrics.set_enabled(mode != "off")
                    provider = providers.get(mode)
                    tracing.use_provider(provider, capture=False)
                    for text in ("chat", "tool"):
                        sink_before = _Sink.cpu
                        ms = await _round(client, text, runs, f"{mode}-{text}-{r}")
                        if provider is not None:
                            provider.force_flush()
                            ms -= (_Sink.cpu - sink_before) / runs * 1000
                        results.setdefault((mode, text), []).append(ms)
    tracing.use_provider(None)
    for provider in providers.values():
        provider.shutdown()
    sink.shutdown()
    print(f"CPU ms per run over {rounds} rounds of {runs} runs (in process, memory://)")
    print("| workload | statistic | off | metrics | traced | sampled 10% | vs off |")
    print("|---|---|---|---|---|---|---|")
    for text in ("chat", "tool"):
        for label, pick in (("min", min), ("median", statistics.median)):
            off, met, traced, sampled = (pick(results[(m, text)]) for m in MODES)
            rel = " / ".join(f"{(v / off - 1) * 100:+.1f}%" for v in (met, traced, sampled))
            print(
                f"| {text} | {label} | {off:.3f} | {met:.3f} | {traced:.3f} | {sampled:.3f} "
                f"| {rel} |"
            )


def micro(rounds: int, runs: int = 2000) -> None:
    """CPU of the observability calls one run makes, alone (no app around them).

    A chat run makes: the middleware's request id and HTTP metrics, the run meter, one model
    call with its tokens, and (traced) 3 spans; a tool run adds a model call, a tool call and
    2 spans. Spans are exported as in "traced" (batch processor, OTLP/HTTP to a sink), and
    the export thread's CPU is included (force_flush per round).
    """
    from types import SimpleNamespace

    from app.observability.asgi import request_id_from

    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    endpoint = f"http://127.0.0.1:{sink.server_port}/v1/traces"
    providers = {"traced": _tracer_provider(endpoint), "sampled": _tracer_provider(endpoint, 0.1)}
    usage = SimpleNamespace(prompt_token_count=10, candidates_token_count=5, thoughts_token_count=0)
    response = SimpleNamespace(
        usage_metadata=usage,
        finish_reason="STOP",
        model_version="m",
        error_code=None,
        content=None,
    )
    headers = [(b"host", b"x"), (b"content-type", b"application/json"), (b"accept", b"*/*")]

    def one_run(tool: bool) -> None:
        rid = request_id_from(headers)
        server = tracing.start_server_span("POST", headers, {"http.request.method": "POST"})
        meter = metrics.RunMeter("bench", "run")
        agent = tracing.invoke_agent("agent", "", "s", None)
        for call in range(2 if tool else 1):
            chat = tracing.chat("model", agent)
            tracing.chat_response(chat, response)
            metrics.tokens("bench", "model", usage)
            metrics.model_call("model", 0.001, None)
            tracing.end_span(chat)
            meter.event()
            if tool and call == 0:
                span = tracing.execute_tool("get_weather", "id", {}, agent)
                metrics.tool_call("get_weather", 0.0001, failed=False)
                tracing.end_span(span)
        tracing.end_span(agent)
        meter.finish("completed")
        metrics.http_request("POST", "/apps/{app}/users/{uid}/sessions/{sid}:run", 200, 0.01)
        if server is not None:
            tracing.end_server_span(server, "POST /run", {"http.response.status_code": 200}, False)
        assert rid

    results: dict[tuple[str, str], list[float]] = {}
    for _ in range(rounds):
        for mode in ("metrics", "traced", "sampled"):
            metrics.set_enabled(True)
            provider = providers.get(mode)
            tracing.use_provider(provider, capture=False)
            for kind in ("chat", "tool"):
                sink_before = _Sink.cpu
                started = time.process_time()
                for _ in range(runs):
                    one_run(kind == "tool")
                if provider is not None:
                    provider.force_flush()
                spent = time.process_time() - started - (_Sink.cpu - sink_before)
                results.setdefault((mode, kind), []).append(spent / runs * 1e6)
    tracing.use_provider(None)
    for each in providers.values():
        each.shutdown()
    sink.shutdown()
    print(f"CPU µs per run of the observability calls alone, min of {rounds} rounds of {runs}")
    print("| workload | metrics | metrics + traced (all sampled) | metrics + traced (10%) |")
    print("|---|---|---|---|")
    for kind in ("chat", "tool"):
        cells = " | ".join(
            f"{min(results[(mode, kind)]):.0f}" for mode in ("metrics", "traced", "sampled")
        )
        print(f"| {kind} | {cells} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--micro", action="store_true", help="time the observability calls alone")
    args = parser.parse_args()
    if args.micro:
        micro(args.rounds)
    else:
        asyncio.run(main(args.runs, args.rounds))
