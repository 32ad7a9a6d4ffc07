"""CPU per HTTP run with observability off, metrics only (the default), and metrics + tracing.

The whole app runs in this process (ASGI transport, `memory://` store, the bench agent), so
the number is the process's CPU time per run, our code only: no sockets, no Postgres, no
load generator competing for the cores. Modes alternate round by round (the machine is
shared and noisy, so each mode goes first in turn); reported: the fastest and median rounds
of each mode, and the median over rounds of each mode's ratio to "off" in the same round
(the steadiest figure on a loaded machine).

Traced modes export every span over OTLP/HTTP (protobuf) through the SDK's batch processor to
a collector stand-in in another process (it decodes each request and counts the spans, so
the count printed at the end proves the export happened); this process's CPU includes the
span encoding and the export thread, flushed at the end of every round. Modes:

- off: no metrics, no tracing; metrics: the default;
- traced: metrics + tracing, every trace sampled, as `OTEL_EXPORTER_OTLP_ENDPOINT` sets it up
  (lean spans, our encoder);
- sampled: the same with `parentbased_traceidratio` at 10%;
- sdk-spans: every trace sampled with the SDK's own spans and OTLP exporter (how tracing
  was made before the lean spans; for comparison).

    .venv/bin/python benchmarks/observability_overhead.py [--runs 100] [--rounds 11]

`benchmarks/http_load.py --observability off|metrics|traced` measures the same over real
sockets and Postgres (noisier on a shared machine).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import httpx

from app.observability import metrics, tracing
from app.server.app import create_app
from app.server.settings import Settings

AGENTS = Path(__file__).resolve().parent / "bench_agents"
BASE = "/apps/bench_agent/users/u/sessions"
MODES = ("off", "metrics", "traced", "sampled", "sdk-spans")

COLLECTOR = """
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest

spans = 0
lock = threading.Lock()
class Collector(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        global spans
        body = self.rfile.read(int(self.headers.get("content-length", "0")))
        request = ExportTraceServiceRequest.FromString(body)
        with lock:
            spans += sum(len(s.spans) for r in request.resource_spans for s in r.scope_spans)
        self.send_response(200)
        self.send_header("content-type", "application/x-protobuf")
        self.send_header("content-length", "0")
        self.end_headers()
    def do_GET(self):
        body = str(spans).encode()
        self.send_response(200)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)
    def log_message(self, *args):
        pass
server = ThreadingHTTPServer(("127.0.0.1", 0), Collector)
print(server.server_port, flush=True)
server.serve_forever()
"""


class Collector:
    """An OTLP/HTTP trace receiver in a child process (decodes and counts spans)."""

    def __enter__(self) -> Collector:
        self.process = subprocess.Popen(
            [sys.executable, "-c", COLLECTOR], stdout=subprocess.PIPE, text=True
        )
        assert self.process.stdout is not None
        self.url = f"http://127.0.0.1:{self.process.stdout.readline().strip()}"
        return self

    def spans(self) -> int:
        """Spans received so far."""
        with urllib.request.urlopen(self.url) as response:
            return int(response.read())

    def __exit__(self, *exc: object) -> None:
        self.process.terminate()
        self.process.wait()


def _tracer_provider(endpoint: str, ratio: float = 1.0, sdk_exporter: bool = False) -> Any:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor
    from opentelemetry.sdk.trace.sampling import ALWAYS_ON, ParentBased, TraceIdRatioBased

    from app.observability.otlp import OTLPHttpSpanExporter

    sampler = ALWAYS_ON if ratio >= 1 else ParentBased(TraceIdRatioBased(ratio))
    provider = TracerProvider(sampler=sampler)
    exporter_class = OTLPSpanExporter if sdk_exporter else OTLPHttpSpanExporter
    provider.add_span_processor(BatchSpanProcessor(exporter_class(endpoint=endpoint)))
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
    with Collector() as collector:
        endpoint = f"{collector.url}/v1/traces"
        providers = {
            "traced": _tracer_provider(endpoint),
            "sampled": _tracer_provider(endpoint, 0.1),
            "sdk-spans": _tracer_provider(endpoint, sdk_exporter=True),
        }
        settings = Settings(database_url="memory://", agents_dir=AGENTS, log_level="warning")
        app = create_app(settings)
        results: dict[tuple[str, str], list[float]] = {}
        sent: dict[str, int] = {}
        async with app.router.lifespan_context(app):
            transport = httpx.ASGITransport(app=app)
            async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
                for mode in MODES:  # warm-up: imports, caches, first spans of every mode
                    _use(mode, providers)
                    for text in ("chat", "tool"):
                        await _round(client, text, 20, f"warm-{mode}-{text}")
                    _flush(providers.get(mode))
                for r in range(rounds):
                    order = MODES[r % len(MODES) :] + MODES[: r % len(MODES)]
                    for mode in order:  # each mode goes first in turn
                        provider = _use(mode, providers)
                        for text in ("chat", "tool"):
                            before = collector.spans() if provider is not None else 0
                            started = time.process_time()
                            await _round(client, text, runs, f"{mode}-{text}-{r}")
                            _flush(provider)
                            spent = time.process_time() - started
                            results.setdefault((mode, text), []).append(spent / runs * 1000)
                            if provider is not None:
                                sent[mode] = sent.get(mode, 0) + collector.spans() - before
        tracing.use_provider(None)
        for provider in providers.values():
            provider.shutdown()
    load = " ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"CPU ms per run, {rounds} rounds of {runs} runs per mode (in process, memory://)")
    print(f"load average at the end: {load}; spans the collector received: {json.dumps(sent)}")
    print("| workload | statistic | " + " | ".join(MODES) + " |")
    print("|---|---|" + "---:|" * len(MODES))
    for text in ("chat", "tool"):
        for label, pick in (("fastest", min), ("median", statistics.median)):
            values = [pick(results[(m, text)]) for m in MODES]
            off = values[0]
            cells = [f"{values[0]:.3f}"]
            cells += [f"{v:.3f} ({(v / off - 1) * 100:+.0f}%)" for v in values[1:]]
            print(f"| {text} | {label} | " + " | ".join(cells) + " |")
        # Each round runs every mode back to back: its ratio to that round's "off" cancels the
        # slow drift of the machine's load; the median of those ratios is the steadiest figure.
        offs = results[("off", text)]
        ratios = [
            statistics.median(m / o for m, o in zip(results[(mode, text)], offs, strict=True))
            for mode in MODES[1:]
        ]
        cells = ["1"] + [f"{(r - 1) * 100:+.1f}%" for r in ratios]
        print(f"| {text} | median of per-round ratios to off | " + " | ".join(cells) + " |")


def _use(mode: str, providers: dict[str, Any]) -> Any:
    metrics.set_enabled(mode != "off")
    provider = providers.get(mode)
    tracing.use_provider(provider, capture=False, lean=mode != "sdk-spans")
    return provider


def _flush(provider: Any) -> None:
    if provider is not None:
        provider.force_flush()


def micro(rounds: int, runs: int = 2000) -> None:
    """CPU of the observability calls one run makes, alone (no app around them).

    A chat run makes: the middleware's request id and HTTP metrics, the run meter, one model
    call with its tokens, and (traced) 3 spans; a tool run adds a model call, a tool call and
    2 spans. Spans are exported as in the app modes (batch processor, OTLP/HTTP to the
    collector process), the export thread's CPU included (force_flush per round).
    """
    from types import SimpleNamespace

    from app.observability.asgi import request_id_from

    collector = Collector().__enter__()
    endpoint = f"{collector.url}/v1/traces"
    providers = {
        "traced": _tracer_provider(endpoint),
        "sampled": _tracer_provider(endpoint, 0.1),
        "sdk-spans": _tracer_provider(endpoint, sdk_exporter=True),
    }
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
    modes = MODES[1:]
    for _ in range(rounds):
        for mode in modes:
            provider = _use(mode, providers)
            for kind in ("chat", "tool"):
                started = time.process_time()
                for _ in range(runs):
                    one_run(kind == "tool")
                _flush(provider)
                results.setdefault((mode, kind), []).append(
                    (time.process_time() - started) / runs * 1e6
                )
    tracing.use_provider(None)
    for each in providers.values():
        each.shutdown()
    collector.__exit__()
    print(f"CPU µs per run of the observability calls alone, fastest of {rounds} rounds of {runs}")
    print("| workload | " + " | ".join(modes) + " |")
    print("|---|" + "---:|" * len(modes))
    for kind in ("chat", "tool"):
        cells = " | ".join(f"{min(results[(mode, kind)]):.0f}" for mode in modes)
        print(f"| {kind} | {cells} |")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=11)
    parser.add_argument("--micro", action="store_true", help="time the observability calls alone")
    args = parser.parse_args()
    if args.micro:
        micro(args.rounds)
    else:
        asyncio.run(main(args.runs, args.rounds))
