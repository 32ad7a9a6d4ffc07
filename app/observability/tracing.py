"""OpenTelemetry tracing: SDK set-up from the standard `OTEL_*` variables, and the spans we make.

Off unless `OTEL_EXPORTER_OTLP_ENDPOINT` (or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`) is set: then
spans go over OTLP (`OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf`, the default, or `grpc`)
through a batch processor; `OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`
and the exporter's own variables apply as the SDK defines them. When off, every function
here returns at once (no span objects are made).

With an SDK provider the spans are `LeanSpan`s (app.observability.spans) handed to the SDK's
processors as ordinary `ReadableSpan`s, and `http/protobuf` export encodes them with our
direct encoder (app.observability.otlp): the SDK's own span objects and encoder cost several
times more CPU than the run they describe.

Span tree (GenAI semantic conventions):

    {METHOD} {route}            SERVER, from the middleware; continues a W3C `traceparent`
      invoke_agent {agent}      one per agent that runs (sub-agents nest)
        chat {model}            one per model call (one per turn on a live connection)
        execute_tool {tool}     one per function call

Spans that live across an async generator's `yield` are never made "current" (a context
attached in a generator leaks into its consumer and cannot be detached from another task);
their children name them as parent explicitly.

Message contents (prompts, replies, tool arguments and results) are recorded only when
`OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT=true`.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterable
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import propagate, trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from app.observability.spans import LeanTracer

logger = logging.getLogger(__name__)

CAPTURE_CONTENT_ENV = "OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT"
INSTRUMENTATION_NAME = "agent-service"
DEFAULT_SERVICE_NAME = "agent-service"

_tracer: trace.Tracer | None = None
_lean: LeanTracer | None = None
_capture_content = False
_configured = False
_provider: Any = None


def enabled() -> bool:
    """Whether spans are being made."""
    return _tracer is not None


def capture_content() -> bool:
    """Whether message contents go into spans."""
    return _capture_content


def configure_from_env() -> bool:
    """Install the SDK with an OTLP exporter if the environment asks for it (once per process).

    Returns whether tracing is on.
    """
    global _configured
    if _configured:
        return enabled()
    _configured = True
    env = os.environ
    endpoint = env.get("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") or env.get(
        "OTEL_EXPORTER_OTLP_ENDPOINT"
    )
    if not endpoint or env.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return False
    from opentelemetry.sdk.resources import SERVICE_NAME, Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

    protocol = (
        env.get("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
        or env.get("OTEL_EXPORTER_OTLP_PROTOCOL")
        or "http/protobuf"
    )
    exporter: Any
    if protocol.strip().lower() == "grpc":
        from opentelemetry.exporter.otlp.proto.grpc.trace_exporter import OTLPSpanExporter

        exporter = OTLPSpanExporter()
    else:
        from app.observability.otlp import OTLPHttpSpanExporter

        exporter = OTLPHttpSpanExporter()
    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; without a name
    # there, it says "unknown_service": ours is better.
    resource = Resource.create()
    if str(resource.attributes.get(SERVICE_NAME, "")).startswith("unknown_service"):
        resource = resource.merge(Resource({SERVICE_NAME: DEFAULT_SERVICE_NAME}))
    provider = TracerProvider(resource=resource)
    provider.add_span_processor(BatchSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    use_provider(provider)
    logger.info("tracing on: OTLP %s to %s", protocol, endpoint)
    return True


def use_provider(provider: Any, *, capture: bool | None = None, lean: bool = True) -> None:
    """Make spans with `provider` (None: stop); `capture` overrides the content variable.

    Tests pass an SDK `TracerProvider` with an in-memory exporter. With an SDK provider, spans
    are `LeanSpan`s fed to its pipeline; `lean=False` makes the SDK's own spans instead (the
    overhead benchmark compares the two).
    """
    global _tracer, _lean, _capture_content, _provider
    _provider = provider
    _tracer = provider.get_tracer(INSTRUMENTATION_NAME) if provider is not None else None
    _lean = None
    if (
        lean
        and _tracer is not None
        and all(
            hasattr(_tracer, name)
            for name in ("sampler", "id_generator", "resource", "span_processor")
        )
    ):  # the SDK's tracer: make lean spans for its pipeline (app.observability.spans)
        _lean = LeanTracer(_tracer, INSTRUMENTATION_NAME)
    if capture is None:
        capture = os.environ.get(CAPTURE_CONTENT_ENV, "").strip().lower() == "true"
    _capture_content = capture


def shutdown() -> None:
    """Flush and stop the exporter (at process exit)."""
    if _provider is not None and hasattr(_provider, "shutdown"):
        _provider.shutdown()


# Server spans (the ASGI middleware).


def start_server_span(
    name: str, headers: Iterable[tuple[bytes, bytes]], attributes: dict[str, Any]
) -> tuple[Span, object] | None:
    """Start the request's SERVER span (child of the caller's `traceparent`) and make it current.

    Returns (span, token) for `end_server_span`, or None when tracing is off.
    """
    if _tracer is None:
        return None
    carrier: dict[str, str] = {}
    fields = _propagated_headers()
    for key, value in headers:
        if key in fields:  # ASGI header names are lower-case bytes
            carrier[key.decode("latin-1")] = value.decode("latin-1")
    parent = propagate.extract(carrier) if carrier else None
    if _lean is not None:
        remote = trace.get_current_span(parent).get_span_context() if parent is not None else None
        span = _lean.start_span(name, remote, SpanKind.SERVER, attributes, parent)
    else:
        span = _tracer.start_span(name, context=parent, kind=SpanKind.SERVER, attributes=attributes)
    token = otel_context.attach(trace.set_span_in_context(span, parent))
    return span, token


def _propagated_headers() -> frozenset[bytes]:
    """Header names the global propagator reads (traceparent, tracestate, baggage)."""
    global _fields_of, _fields
    textmap = propagate.get_global_textmap()
    if textmap is not _fields_of:  # computed once per propagator, not per request
        _fields = frozenset(name.lower().encode("latin-1") for name in textmap.fields)
        _fields_of = textmap
    return _fields


_fields_of: Any = None
_fields: frozenset[bytes] = frozenset()


def end_server_span(
    started: tuple[Span, object], name: str, attributes: dict[str, Any], error: bool
) -> None:
    """Name the span after its route, set the response's attributes, end it, detach it."""
    span, token = started
    span.update_name(name)
    span.set_attributes(attributes)
    if error:
        span.set_status(Status(StatusCode.ERROR))
    span.end()
    otel_context.detach(token)  # type: ignore[arg-type]


def current_ids() -> tuple[str, str] | None:
    """(trace id, span id) of the current span in hex, for log lines; None when there is none."""
    span_context = trace.get_current_span().get_span_context()
    if not span_context.is_valid:
        return None
    return format(span_context.trace_id, "032x"), format(span_context.span_id, "016x")


# GenAI spans.


def _start(name: str, parent: Span | None, kind: SpanKind, attributes: dict[str, Any]) -> Span:
    if _lean is not None:
        if parent is None:
            current = otel_context.get_current()
            parent_context = trace.get_current_span(current).get_span_context()
            return _lean.start_span(name, parent_context, kind, attributes, current)
        return _lean.start_span(name, parent.get_span_context(), kind, attributes)
    assert _tracer is not None
    ctx = trace.set_span_in_context(parent) if parent is not None else None
    return _tracer.start_span(name, context=ctx, kind=kind, attributes=attributes)


def mark_error(span: Span | None, error: BaseException) -> None:
    """Mark a span failed with `error.type` (the exception's class) and a short description."""
    if span is not None:
        span.set_attribute("error.type", type(error).__qualname__)
        span.set_status(Status(StatusCode.ERROR, str(error)[:200]))


def end_span(span: Span | None, error: BaseException | None = None) -> None:
    """End a span made here; an error marks it failed."""
    if span is None:
        return
    if error is not None:
        mark_error(span, error)
    span.end()


def invoke_agent(
    agent: str, description: str, conversation_id: str, parent: Span | None
) -> Span | None:
    """Start `invoke_agent {agent}` (under `parent`, else the current span)."""
    if _tracer is None:
        return None
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": agent,
        "gen_ai.conversation.id": conversation_id,
    }
    if description:
        attributes["gen_ai.agent.description"] = description
    return _start(f"invoke_agent {agent}", parent, SpanKind.INTERNAL, attributes)


def chat(model: str, parent: Span | None, request: Any = None) -> Span | None:
    """Start `chat {model}`; with content capture, record the request's messages."""
    if _tracer is None:
        return None
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.request.model": model,
    }
    if model.startswith("gemini"):
        attributes["gen_ai.provider.name"] = "gcp.gemini"
    span = _start(f"chat {model}", parent, SpanKind.CLIENT, attributes)
    if _capture_content and request is not None:
        span.set_attribute("gen_ai.input.messages", _dump(request.contents))
        instruction = getattr(request.config, "system_instruction", None)
        if instruction is not None:
            span.set_attribute("gen_ai.system_instructions", _dump(instruction))
    return span


def chat_response(span: Span | None, response: Any) -> None:
    """Record a (final) model response on a chat span: usage, finish reason, error, content."""
    if span is None:
        return
    attributes: dict[str, Any] = {}  # one set_attributes: each call takes the span's lock
    usage = response.usage_metadata
    if usage is not None:
        if usage.prompt_token_count is not None:
            attributes["gen_ai.usage.input_tokens"] = usage.prompt_token_count
        output = (usage.candidates_token_count or 0) + (usage.thoughts_token_count or 0)
        if output:
            attributes["gen_ai.usage.output_tokens"] = output
    if response.finish_reason is not None:
        reason = getattr(response.finish_reason, "value", response.finish_reason)
        attributes["gen_ai.response.finish_reasons"] = (str(reason).lower(),)
    if response.model_version:
        attributes["gen_ai.response.model"] = response.model_version
    if response.error_code:
        attributes["error.type"] = str(response.error_code)
        span.set_status(Status(StatusCode.ERROR, (response.error_message or "")[:200]))
    if _capture_content and response.content is not None:
        attributes["gen_ai.output.messages"] = _dump([response.content])
    if attributes:
        span.set_attributes(attributes)


def execute_tool(tool: str, call_id: str | None, args: Any, parent: Span | None) -> Span | None:
    """Start `execute_tool {tool}`; with content capture, record the arguments."""
    if _tracer is None:
        return None
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": tool,
        "gen_ai.tool.type": "function",
    }
    if call_id:
        attributes["gen_ai.tool.call.id"] = call_id
    if _capture_content:
        attributes["gen_ai.tool.call.arguments"] = _dump(args)
    return _start(f"execute_tool {tool}", parent, SpanKind.INTERNAL, attributes)


def tool_result(span: Span | None, result: Any) -> None:
    """With content capture, record a tool's result on its span."""
    if span is not None and _capture_content:
        span.set_attribute("gen_ai.tool.call.result", _dump(result))


def _dump(value: Any) -> str:
    """JSON of google-genai objects (or plain values) for a span attribute."""

    def default(obj: Any) -> Any:
        dump = getattr(obj, "model_dump", None)
        if dump is not None:
            return dump(mode="json", exclude_none=True)
        return repr(obj)

    return json.dumps(value, default=default, ensure_ascii=False)
