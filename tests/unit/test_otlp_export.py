"""Lean spans and the direct OTLP encoder: same data as the SDK's spans and encoder, over HTTP."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest
from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.sampling import ALWAYS_OFF, ParentBased, TraceIdRatioBased
from opentelemetry.trace import Link, NonRecordingSpan, SpanContext, SpanKind, TraceFlags
from opentelemetry.trace.span import TraceState

from app.observability import tracing
from app.observability.otlp import OTLPHttpSpanExporter, encode_request
from app.observability.spans import LeanSpan

TRACEPARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
UNSAMPLED_PARENT = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00"


def provider_with(memory: InMemorySpanExporter, **kwargs: object) -> TracerProvider:
    provider = TracerProvider(**kwargs)  # type: ignore[arg-type]
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return provider


@pytest.fixture
def memory() -> Iterator[InMemorySpanExporter]:
    exporter = InMemorySpanExporter()
    yield exporter
    tracing.use_provider(None)


def a_run(traceparent: str | None = None) -> None:
    """The spans of a tool run, through the helpers the app uses."""
    headers = [(b"traceparent", traceparent.encode())] if traceparent else []
    server = tracing.start_server_span("POST", headers, {"http.request.method": "POST"})
    assert server is not None
    agent = tracing.invoke_agent("agent", "helps", "session-1", None)
    chat = tracing.chat("gemini-2.5-flash", agent)
    usage = SimpleNamespace(prompt_token_count=12, candidates_token_count=3, thoughts_token_count=4)
    response = SimpleNamespace(
        usage_metadata=usage,
        finish_reason="STOP",
        model_version="gemini-2.5-flash-001",
        error_code="RESOURCE_EXHAUSTED",
        error_message="quota",
        content=None,
    )
    tracing.chat_response(chat, response)
    tracing.end_span(chat)
    tool = tracing.execute_tool("get_weather", "call-1", {"city": "Paris"}, agent)
    tracing.end_span(tool, ValueError("no such city"))
    tracing.end_span(agent)
    tracing.end_server_span(server, "POST /run", {"http.response.status_code": 200}, False)


def test_lean_spans_carry_what_sdk_spans_carry(memory: InMemorySpanExporter) -> None:
    tracing.use_provider(provider_with(memory), capture=False)
    a_run(TRACEPARENT)
    lean = memory.get_finished_spans()
    memory.clear()
    tracing.use_provider(provider_with(memory), capture=False, lean=False)
    a_run(TRACEPARENT)
    sdk = memory.get_finished_spans()
    assert all(isinstance(s, ReadableSpan) for s in lean)

    def shape(spans: tuple[ReadableSpan, ...]) -> list[tuple[object, ...]]:
        ids = {s.context.span_id: s.name for s in spans}
        return [
            (
                s.name,
                s.kind,
                dict(s.attributes or {}),
                s.status.status_code,
                s.status.description,
                format(s.context.trace_id, "032x"),
                ids.get(s.parent.span_id, s.parent.is_remote) if s.parent else None,
                s.context.trace_flags.sampled,
                s.instrumentation_scope.name if s.instrumentation_scope else None,
            )
            for s in spans
        ]

    assert shape(lean) == shape(sdk)
    [server] = [s for s in lean if s.kind is SpanKind.SERVER]
    assert server.parent is not None and server.parent.is_remote
    assert all(s.end_time and s.start_time and s.end_time >= s.start_time for s in lean)


def test_the_sampler_decides_for_roots_and_children_follow(memory: InMemorySpanExporter) -> None:
    ratio_zero = ParentBased(TraceIdRatioBased(0))
    tracing.use_provider(provider_with(memory, sampler=ratio_zero), capture=False)
    a_run()
    assert memory.get_finished_spans() == ()
    a_run(UNSAMPLED_PARENT)
    assert memory.get_finished_spans() == ()
    a_run(TRACEPARENT)  # the caller sampled it: parent-based samplers follow
    assert len(memory.get_finished_spans()) == 4

    memory.clear()
    tracing.use_provider(provider_with(memory, sampler=ALWAYS_OFF), capture=False)
    agent = tracing.invoke_agent("agent", "", "s", None)
    assert agent is not None and not agent.is_recording()
    assert agent.get_span_context().is_valid  # children join its trace, unsampled
    chat = tracing.chat("m", agent)
    assert chat is not None and not chat.is_recording()
    assert chat.get_span_context().trace_id == agent.get_span_context().trace_id
    assert memory.get_finished_spans() == ()


def test_a_current_span_is_the_parent_when_none_is_given(memory: InMemorySpanExporter) -> None:
    tracing.use_provider(provider_with(memory), capture=False)
    outer = tracing.invoke_agent("outer", "", "s", None)
    assert isinstance(outer, LeanSpan)
    token = otel_context.attach(trace.set_span_in_context(outer))
    try:
        inner = tracing.invoke_agent("inner", "", "s", None)
    finally:
        otel_context.detach(token)
    tracing.end_span(inner)
    tracing.end_span(outer)
    tracing.end_span(outer)  # a second end changes nothing
    spans = {s.name: s for s in memory.get_finished_spans()}
    assert len(memory.get_finished_spans()) == 2
    inner_span = spans["invoke_agent inner"]
    assert inner_span.parent is not None
    assert inner_span.parent.span_id == spans["invoke_agent outer"].context.span_id


def varied_spans(memory: InMemorySpanExporter) -> tuple[ReadableSpan, ...]:
    """Spans with every kind of value, status, event, trace state and link."""
    tracing.use_provider(provider_with(memory), capture=False)
    a_run(TRACEPARENT)
    a_run()
    span = tracing.invoke_agent("odd values", "", "s", None)
    assert span is not None
    span.set_attributes(
        {
            "int": -42,
            "big": 2**62,
            "float": 0.25,
            "bool": False,
            "bytes": b"\x00\xff",
            "strings": ["a", "é"],
            "ints": (1, 2, 300),
            "long": "x" * 300,
        }
    )
    span.record_exception(RuntimeError("boom"))
    span.add_event("marker", {"n": 1}, timestamp=123)
    span.update_name("renamed")
    tracing.end_span(span)
    # SDK-made spans (a link, trace state, another resource): the encoder must take any.
    sdk = TracerProvider(resource=Resource({"service.name": "other", "n": 3}))
    sdk.add_span_processor(SimpleSpanProcessor(memory))
    linked = SpanContext(1, 2, is_remote=True, trace_flags=TraceFlags(1))
    state_parent = SpanContext(
        3, 4, is_remote=True, trace_flags=TraceFlags(1), trace_state=TraceState([("k", "v")])
    )
    with sdk.get_tracer("other", "1.2").start_as_current_span(
        "sdk span",
        context=trace.set_span_in_context(NonRecordingSpan(state_parent)),
        kind=SpanKind.PRODUCER,
        links=[Link(linked, {"why": "test"})],
    ):
        pass
    return memory.get_finished_spans()


def test_the_encoder_writes_what_the_sdk_encoder_writes(memory: InMemorySpanExporter) -> None:
    spans = varied_spans(memory)
    assert len(spans) == 10
    ours = ExportTraceServiceRequest.FromString(encode_request(spans))
    assert ours == encode_spans(spans)
    assert len(ours.resource_spans) == 2


class Receiver(BaseHTTPRequestHandler):
    """An OTLP/HTTP trace endpoint: keeps each request's path, headers and body."""

    received: list[tuple[str, dict[str, str], bytes]] = []
    arrived = threading.Event()

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers["content-length"]))
        headers = {key.lower(): value for key, value in self.headers.items()}
        Receiver.received.append((self.path, headers, body))
        self.send_response(200)
        self.send_header("content-length", "0")
        self.end_headers()
        Receiver.arrived.set()

    def log_message(self, format: str, *args: object) -> None:
        return


def test_spans_reach_an_otlp_http_endpoint(memory: InMemorySpanExporter) -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        exporter = OTLPHttpSpanExporter(
            endpoint=f"http://127.0.0.1:{server.server_port}/v1/traces",
            headers={"x-tenant": "t1"},
        )
        provider = TracerProvider()
        provider.add_span_processor(BatchSpanProcessor(exporter))
        tracing.use_provider(provider, capture=False)
        a_run(TRACEPARENT)
        assert provider.force_flush(10_000)
        assert Receiver.arrived.wait(10)
        provider.shutdown()
    finally:
        server.shutdown()
        server.server_close()
    [(path, headers, body)] = Receiver.received
    assert path == "/v1/traces"
    assert headers["content-type"] == "application/x-protobuf"
    assert headers["x-tenant"] == "t1"
    request = ExportTraceServiceRequest.FromString(body)
    names = sorted(s.name for r in request.resource_spans for ss in r.scope_spans for s in ss.spans)
    assert names == [
        "POST /run",
        "chat gemini-2.5-flash",
        "execute_tool get_weather",
        "invoke_agent agent",
    ]
