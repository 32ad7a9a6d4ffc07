"""Lean spans for the SDK pipeline: what `Tracer.start_span` makes, for a fraction of its CPU.

The SDK's `_Span` costs 30-60 µs to start and end (attribute validation under locks, bounded
collections, the tracer's own metrics hook, context look-ups): with the 3-5 spans a run makes,
that alone was more than the tracing budget of 15% of a run. A `LeanSpan` keeps only what the
spans this service makes need (plain dict of attributes it builds itself, events, status) and
at `end()` hands the SDK's span processors an ordinary `ReadableSpan`, so everything
downstream is the SDK's: the provider's sampler, id generator and resource, its batch
processor and exporters, the in-memory exporter of the tests.

Sampling: the provider's sampler decides for a local root (no parent, or a remote parent from
a `traceparent`); a child follows its local parent, which is what every `parentbased_*`
sampler (the SDK's default) decides, and what `traceidratio`/`always_*` decide too (their
answer depends on the trace id alone).
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry import context as otel_context
from opentelemetry import trace
from opentelemetry.sdk.trace import Event, ReadableSpan, SpanLimits
from opentelemetry.sdk.util.instrumentation import InstrumentationScope
from opentelemetry.trace import (
    NonRecordingSpan,
    Span,
    SpanContext,
    SpanKind,
    Status,
    StatusCode,
    TraceFlags,
)
from opentelemetry.util import types

_SAMPLED = TraceFlags(TraceFlags.SAMPLED)
_UNSAMPLED = TraceFlags(TraceFlags.DEFAULT)
_SAMPLED_RANDOM = TraceFlags(TraceFlags.SAMPLED | TraceFlags.RANDOM_TRACE_ID)
_UNSAMPLED_RANDOM = TraceFlags(TraceFlags.DEFAULT | TraceFlags.RANDOM_TRACE_ID)
_UNSET = Status(StatusCode.UNSET)


class LeanTracer:
    """Starts `LeanSpan`s with an SDK tracer's sampler, id generator, resource and processors."""

    def __init__(self, sdk_tracer: Any, scope_name: str) -> None:
        self.sampler = sdk_tracer.sampler
        self.ids = sdk_tracer.id_generator
        self.resource = sdk_tracer.resource
        self.processor = sdk_tracer.span_processor
        self.scope = InstrumentationScope(scope_name)
        self.random_ids = bool(self.ids.is_trace_id_random())
        self.max_value_length: int | None = SpanLimits().max_span_attribute_length

    def start_span(
        self,
        name: str,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: dict[str, Any],
        parent_context: otel_context.Context | None = None,
    ) -> Span:
        """A span under `parent` (None or invalid: a root); `attributes` is kept, not copied.

        `parent_context` is the context holding a remote parent, passed to the sampler.
        """
        if parent is None or not parent.is_valid:
            parent = None
            trace_id = self.ids.generate_trace_id()
            sampled, trace_state = self._sample(None, trace_id, name, kind, attributes)
            flags = (
                (_SAMPLED_RANDOM if sampled else _UNSAMPLED_RANDOM)
                if self.random_ids
                else (_SAMPLED if sampled else _UNSAMPLED)
            )
        elif parent.is_remote:
            trace_id = parent.trace_id
            remote = parent_context or trace.set_span_in_context(NonRecordingSpan(parent))
            sampled, trace_state = self._sample(remote, trace_id, name, kind, attributes)
            random = parent.trace_flags & TraceFlags.RANDOM_TRACE_ID
            flags = TraceFlags((TraceFlags.SAMPLED if sampled else 0) | random)
        else:
            trace_id = parent.trace_id
            flags = parent.trace_flags
            sampled = flags.sampled
            trace_state = parent.trace_state
        own = SpanContext(
            trace_id,
            self.ids.generate_span_id(),
            is_remote=False,
            trace_flags=flags,
            trace_state=trace_state,
        )
        if not sampled:
            return NonRecordingSpan(own)
        span = LeanSpan(self, name, own, parent, kind, attributes)
        self.processor.on_start(span, parent_context)
        return span

    def _sample(
        self,
        context: otel_context.Context | None,
        trace_id: int,
        name: str,
        kind: SpanKind,
        attributes: dict[str, Any],
    ) -> tuple[bool, Any]:
        result = self.sampler.should_sample(context, trace_id, name, kind, attributes)
        if result.attributes:
            attributes.update(result.attributes)
        return result.decision.is_sampled(), result.trace_state


class LeanSpan(Span):
    """A recording span that becomes an SDK `ReadableSpan` when it ends (see the module)."""

    __slots__ = (
        "_attributes",
        "_context",
        "_ended",
        "_events",
        "_kind",
        "_name",
        "_parent",
        "_start",
        "_status",
        "_tracer",
    )

    def __init__(
        self,
        tracer: LeanTracer,
        name: str,
        context: SpanContext,
        parent: SpanContext | None,
        kind: SpanKind,
        attributes: dict[str, Any],
    ) -> None:
        self._tracer = tracer
        self._name = name
        self._context = context
        self._parent = parent
        self._kind = kind
        self._attributes = attributes
        self._events: list[Event] | None = None
        self._status = _UNSET
        self._start = time.time_ns()
        self._ended = False

    def get_span_context(self) -> SpanContext:
        """This span's context."""
        return self._context

    def is_recording(self) -> bool:
        """Whether the span still takes data (it has not ended)."""
        return not self._ended

    def set_attributes(self, attributes: Mapping[str, types.AnyValue]) -> None:
        """Add or replace attributes."""
        if not self._ended:
            for key, value in attributes.items():
                self._attributes[key] = self._clean(value)

    def set_attribute(self, key: str, value: types.AnyValue) -> None:
        """Add or replace one attribute."""
        if not self._ended:
            self._attributes[key] = self._clean(value)

    def _clean(self, value: Any) -> Any:
        # Our own attributes are str, int or a sequence of str; others callers may pass lists.
        if isinstance(value, str):
            limit = self._tracer.max_value_length
            return value if limit is None or len(value) <= limit else value[:limit]
        if isinstance(value, list):
            return tuple(value)
        return value

    def add_event(
        self,
        name: str,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
    ) -> None:
        """Record an event."""
        if not self._ended:
            if self._events is None:
                self._events = []
            self._events.append(Event(name, attributes, timestamp))

    def update_name(self, name: str) -> None:
        """Rename the span."""
        if not self._ended:
            self._name = name

    def set_status(self, status: Status | StatusCode, description: str | None = None) -> None:
        """Set the status (OK is final, as in the SDK)."""
        if self._ended or self._status.status_code is StatusCode.OK:
            return
        if isinstance(status, StatusCode):
            status = Status(status, description)
        if status.status_code is not StatusCode.UNSET:
            self._status = status

    def record_exception(
        self,
        exception: BaseException,
        attributes: types.Attributes = None,
        timestamp: int | None = None,
        escaped: bool = False,
    ) -> None:
        """Record an `exception` event (type and message; no stack trace)."""
        event: dict[str, Any] = {
            "exception.type": type(exception).__qualname__,
            "exception.message": str(exception),
        }
        if attributes:
            event.update(attributes)
        self.add_event("exception", event, timestamp)

    def end(self, end_time: int | None = None) -> None:
        """End the span and hand it to the SDK's span processors."""
        if self._ended:
            return
        self._ended = True
        tracer = self._tracer
        events: Sequence[Event] = tuple(self._events) if self._events else ()
        tracer.processor.on_end(
            ReadableSpan(
                name=self._name,
                context=self._context,
                parent=self._parent,
                resource=tracer.resource,
                attributes=self._attributes,
                events=events,
                kind=self._kind,
                status=self._status,
                start_time=self._start,
                end_time=end_time if end_time is not None else time.time_ns(),
                instrumentation_scope=tracer.scope,
            )
        )
