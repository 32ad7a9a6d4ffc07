"""Metrics, traces and structured logs; used from any layer, imports none of them.

- `metrics`: Prometheus families and the functions that record them (`/metrics`).
- `tracing`: OpenTelemetry SDK set-up from `OTEL_*`, and the GenAI spans.
- `logs`: JSON log lines with request and run ids, secrets scrubbed from every line.
- `asgi`: the middleware (request ids, HTTP metrics, the SERVER span).
- `spans`, `otlp`: cheap spans for the SDK's pipeline, and their direct OTLP/HTTP encoder.
"""

from __future__ import annotations

from app.observability import logs, metrics, tracing

__all__ = ["logs", "metrics", "tracing"]
