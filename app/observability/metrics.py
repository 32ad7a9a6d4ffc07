"""Prometheus metrics: the families this service exports and one function per thing it records.

The record functions are what the other layers call; each costs a few microseconds (a cached
labelled child, one or two value updates) and returns at once when metrics are off
(`AGENT_SERVICE_METRICS=false`, see `set_enabled`).

Several worker processes (`agent-service serve --workers N`) share one view through
prometheus-client's multiprocess mode: `PROMETHEUS_MULTIPROC_DIR` names a directory where every
process writes its values to memory-mapped files, and `/metrics` on any worker aggregates them.
The variable must be set before this module is imported (the CLI does it for `--workers > 1`).
Gauges of things in flight (active runs, live connections) only count live processes.

Label values are bounded: app, model and tool names come from the loaded agents, HTTP routes
are templates (`/apps/{app}/...`), never raw paths.
"""

from __future__ import annotations

import os
import time
from typing import Any

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    REGISTRY,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    disable_created_metrics,
    generate_latest,
    multiprocess,
)

MULTIPROC_DIR_ENV = "PROMETHEUS_MULTIPROC_DIR"
"""Where worker processes keep their values in multiprocess mode (prometheus-client's name)."""

CONTENT_TYPE = CONTENT_TYPE_LATEST
"""Content type of `render()`'s output (the Prometheus text format)."""

PREFIX = "agent_service_"

# The `_created` timestamps double the exposition and nothing here needs them.
disable_created_metrics()

_enabled = True

_FAST = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_SLOW = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0)

RUNS_STARTED = Counter(
    PREFIX + "runs_started",
    "Runs (invocations of an app's agents) started; mode is run or live.",
    ["app", "mode"],
)
RUNS_FINISHED = Counter(
    PREFIX + "runs_finished",
    "Runs finished, by status: completed, error or cancelled (client gone, shutdown).",
    ["app", "mode", "status"],
)
RUN_DURATION = Histogram(
    PREFIX + "run_duration_seconds",
    "Wall time of a run, from start to its last event.",
    ["app", "mode"],
    buckets=_SLOW,
)
RUN_FIRST_EVENT = Histogram(
    PREFIX + "run_first_event_seconds",
    "Time from the start of a run to its first event (a streamed token or a stored event).",
    ["app", "mode"],
    buckets=_SLOW,
)
ACTIVE_RUNS = Gauge(
    PREFIX + "active_runs",
    "Runs in progress.",
    ["app"],
    multiprocess_mode="livesum",
)
QUEUED_RUNS = Gauge(
    PREFIX + "queued_runs",
    "Runs waiting for their session's active run to end (durable runs' queue).",
    ["app"],
    multiprocess_mode="livesum",
)
MODEL_CALL_DURATION = Histogram(
    PREFIX + "model_call_duration_seconds",
    "Model calls (one request, streamed or not), until the last chunk.",
    ["model"],
    buckets=_SLOW,
)
MODEL_CALL_ERRORS = Counter(
    PREFIX + "model_call_errors",
    "Model calls that failed (raised, or answered with an error code).",
    ["model", "code"],
)
TOOL_CALL_DURATION = Histogram(
    PREFIX + "tool_call_duration_seconds",
    "Tool (function) executions.",
    ["tool"],
    buckets=(0.001, 0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0),
)
TOOL_CALL_ERRORS = Counter(
    PREFIX + "tool_call_errors",
    "Tool executions that raised (the error went back to the model), or unknown tools.",
    ["tool"],
)
TOKENS = Counter(
    PREFIX + "tokens",
    "Tokens reported by the model's usageMetadata; kind is prompt, candidates or thoughts.",
    ["app", "model", "kind"],
)
LIVE_CONNECTIONS = Gauge(
    PREFIX + "live_connections",
    "Open live WebSocket connections.",
    multiprocess_mode="livesum",
)
AUDIO_CHUNKS = Counter(
    PREFIX + "live_audio_chunks",
    "Audio chunks relayed on live sessions; direction in is client to model, out the reverse.",
    ["direction"],
)
STORE_DURATION = Histogram(
    PREFIX + "session_store_duration_seconds",
    "Session store calls to the database (each one or two statements), by operation.",
    ["operation"],
    buckets=_FAST,
)
DATABASE_UNAVAILABLE = Counter(
    PREFIX + "database_unavailable",
    "Session store calls that failed because the database was unreachable or not migrated.",
    ["operation"],
)
LEASE_STEALS = Counter(
    PREFIX + "run_lease_steals",
    "Durable runs whose session lease was taken over by another replica (lease expired).",
    ["app"],
)
SEALED_RUNS = Counter(
    PREFIX + "runs_sealed",
    "Durable runs sealed by the sweeper after their lease expired.",
    ["app"],
)
HTTP_REQUESTS = Counter(
    PREFIX + "http_requests",
    "HTTP requests answered, by method, route template and status.",
    ["method", "route", "status"],
)
HTTP_DURATION = Histogram(
    PREFIX + "http_request_duration_seconds",
    "HTTP request handling time until the response ended (a whole SSE stream for a run).",
    ["method", "route"],
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 120.0),
)

_children: dict[tuple[Any, ...], Any] = {}


def _child(metric: Any, *labels: str) -> Any:
    """The labelled child of `metric`, cached: `labels()` validates and locks on every call."""
    key = (id(metric), *labels)
    child = _children.get(key)
    if child is None:
        child = _children[key] = metric.labels(*labels)
    return child


def set_enabled(enabled: bool) -> None:
    """Turn recording on or off for this process (`AGENT_SERVICE_METRICS`)."""
    global _enabled
    _enabled = enabled


def enabled() -> bool:
    """Whether metrics are recorded and served."""
    return _enabled


def multiprocess_mode() -> bool:
    """Whether values are shared between worker processes (PROMETHEUS_MULTIPROC_DIR is set)."""
    return bool(os.environ.get(MULTIPROC_DIR_ENV))


def registry() -> CollectorRegistry:
    """The registry to expose: every process's values in multiprocess mode, else this one's."""
    if not multiprocess_mode():
        return REGISTRY
    aggregated = CollectorRegistry()
    multiprocess.MultiProcessCollector(aggregated)
    return aggregated


def render() -> bytes:
    """Return every metric in the Prometheus text format."""
    return generate_latest(registry())


def process_exited(pid: int | None = None) -> None:
    """Drop a finished worker's in-flight gauges (multiprocess mode only)."""
    if multiprocess_mode():
        multiprocess.mark_process_dead(pid or os.getpid())


# Runs.


def run_started(app: str, mode: str) -> float:
    """Count a run as started and active; return its start time for `run_finished`."""
    if _enabled:
        _child(RUNS_STARTED, app, mode).inc()
        _child(ACTIVE_RUNS, app).inc()
    return time.perf_counter()


def run_first_event(app: str, mode: str, started: float) -> None:
    """Record the time a run took to produce its first event."""
    if _enabled:
        _child(RUN_FIRST_EVENT, app, mode).observe(time.perf_counter() - started)


def run_finished(app: str, mode: str, status: str, started: float) -> None:
    """Count a run as finished with `status` (completed, error, cancelled)."""
    if _enabled:
        _child(RUNS_FINISHED, app, mode, status).inc()
        _child(ACTIVE_RUNS, app).dec()
        _child(RUN_DURATION, app, mode).observe(time.perf_counter() - started)


def run_queued(app: str, delta: int) -> None:
    """Add `delta` (+1 queued, -1 left the queue) to the queued runs of `app` (durable runs)."""
    if _enabled:
        _child(QUEUED_RUNS, app).inc(delta)


def lease_stolen(app: str) -> None:
    """Count a durable run whose lease another replica took over."""
    if _enabled:
        _child(LEASE_STEALS, app).inc()


def run_sealed(app: str) -> None:
    """Count a durable run sealed by the sweeper."""
    if _enabled:
        _child(SEALED_RUNS, app).inc()


# Models and tools.


def model_call(model: str, seconds: float, error_code: str | None) -> None:
    """Record one model call: its duration, and its error code when it failed."""
    if _enabled:
        _child(MODEL_CALL_DURATION, model).observe(seconds)
        if error_code is not None:
            _child(MODEL_CALL_ERRORS, model, error_code).inc()


def model_call_error(model: str, error_code: str) -> None:
    """Count a model failure outside a timed call (a live connection's error)."""
    if _enabled:
        _child(MODEL_CALL_ERRORS, model, error_code).inc()


def tokens(app: str, model: str, usage: Any) -> None:
    """Count the tokens of a `GenerateContentResponseUsageMetadata`."""
    if not _enabled or usage is None:
        return
    for kind, count in (
        ("prompt", usage.prompt_token_count),
        ("candidates", usage.candidates_token_count),
        ("thoughts", usage.thoughts_token_count),
    ):
        if count:
            _child(TOKENS, app, model, kind).inc(count)


def tool_call(tool: str, seconds: float, failed: bool) -> None:
    """Record one tool execution."""
    if _enabled:
        _child(TOOL_CALL_DURATION, tool).observe(seconds)
        if failed:
            _child(TOOL_CALL_ERRORS, tool).inc()


def unknown_tool() -> None:
    """Count a call to a tool the agent does not have (the name is not a label: unbounded)."""
    if _enabled:
        _child(TOOL_CALL_ERRORS, "<unknown>").inc()


# Live.


def live_connection(delta: int) -> None:
    """Add `delta` to the open live connections."""
    if _enabled:
        LIVE_CONNECTIONS.inc(delta)


def audio_chunk(direction: str) -> None:
    """Count one audio chunk relayed in `direction` (in: client to model, out: model to client)."""
    if _enabled:
        _child(AUDIO_CHUNKS, direction).inc()


# Session store.


def store_call(operation: str, seconds: float) -> None:
    """Record one session store call's duration."""
    if _enabled:
        _child(STORE_DURATION, operation).observe(seconds)


def database_unavailable(operation: str) -> None:
    """Count a store call that found the database unavailable."""
    if _enabled:
        _child(DATABASE_UNAVAILABLE, operation).inc()


# HTTP.


def http_request(method: str, route: str, status: int, seconds: float) -> None:
    """Record one HTTP request by route template (never the raw path)."""
    if _enabled:
        _child(HTTP_REQUESTS, method, route, str(status)).inc()
        _child(HTTP_DURATION, method, route).observe(seconds)


class RunMeter:
    """Counts one run: started now, its first event, its end (`finish` exactly once)."""

    __slots__ = ("app", "mode", "started", "waiting")

    def __init__(self, app: str, mode: str) -> None:
        self.app = app
        self.mode = mode
        self.started = run_started(app, mode)
        self.waiting = True

    def event(self) -> None:
        """Note an event; the first one records the time to first event."""
        if self.waiting:
            self.waiting = False
            run_first_event(self.app, self.mode, self.started)

    def finish(self, status: str) -> None:
        """Count the run as finished with `status`."""
        run_finished(self.app, self.mode, status, self.started)
