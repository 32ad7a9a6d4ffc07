"""Structured logs: request and run context on every line, JSON lines, and secrets scrubbed.

`AGENT_SERVICE_LOG_FORMAT=json` writes one object per line:

    {"time": "2026-12-02T11:22:47.123Z", "level": "warning", "logger": "app.flows.functions",
     "message": "tool failed ...", "request_id": "...", "trace_id": "...", "span_id": "...",
     "app": "...", "user": "...", "session": "...", "invocation": "..."}

Keys whose value is unknown are left out. The context comes from two context variables: the
request's (set by the middleware: the request id, and the ASGI scope, whose path parameters
the router fills in) and the run's (set by the Runner). Both are read only when a line is
written, so binding them costs one `ContextVar.set`.

Every formatter here (JSON and the text one wrapping uvicorn's) scrubs secrets from the
finished line, tracebacks included: credentials in URLs, `access_token=`/`key=`/`password=`
style parameters, `Authorization` values, JWTs, Google API keys, and the values of secret
environment variables (names containing KEY, TOKEN, SECRET, PASSWORD or CREDENTIAL).
"""

from __future__ import annotations

import datetime as dt
import importlib
import json
import logging
import os
import re
import sys
from collections.abc import MutableMapping
from contextvars import ContextVar
from typing import Any

from app.observability import tracing

FORMATS = ("text", "json")

_request: ContextVar[tuple[str, MutableMapping[str, Any]] | None] = ContextVar(
    "agent_service_request", default=None
)
_run: ContextVar[tuple[str, str, str, str] | None] = ContextVar("agent_service_run", default=None)

MASK = "***"

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # user:password@ in URLs (database URLs, proxies).
    (re.compile(r"(?i)(\b[a-z][a-z0-9+.-]*://[^:/@\s]+:)[^@\s/]+@"), r"\1" + MASK + "@"),
    # key=value in query strings, forms and log messages.
    (
        re.compile(
            r"(?i)((?<![\w-])(?:access_token|id_token|refresh_token|token|api_key|apikey|"
            r"api-key|key|password|passwd|pwd|secret|client_secret|jwt|authorization)=)"
            r"[^&\s\"',;]+"
        ),
        r"\1" + MASK,
    ),
    # "password": "..." and similar in JSON or reprs.
    (
        re.compile(
            r"(?i)([\"'](?:access_token|id_token|refresh_token|token|api_key|apikey|password|"
            r"passwd|secret|client_secret|authorization|x-goog-api-key|x-api-key)[\"']\s*[:=]\s*"
            r"[\"'])[^\"']*"
        ),
        r"\1" + MASK,
    ),
    # Header lines: "Authorization: Bearer ...", "x-goog-api-key: ...".
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + MASK),
    (
        re.compile(r"(?i)((?:x-goog-api-key|x-api-key|api-key)\s*:\s*)[^\s\"',}]+"),
        r"\1" + MASK,
    ),
    # Bare JWTs and Google API keys wherever they appear.
    (re.compile(r"\beyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"), MASK),
    (re.compile(r"\bAIza[0-9A-Za-z_-]{35}\b"), MASK),
]

_SECRET_ENV_NAME = re.compile(r"(?i)(KEY|TOKEN|SECRET|PASSWORD|PASSWD|CREDENTIAL)")
_URL_PASSWORD = re.compile(r"://[^:/@\s]+:([^@\s/]+)@")
_MIN_SECRET_LENGTH = 6

_secrets: set[str] = set()


def register_secret(value: str | None) -> None:
    """Scrub this exact value from every log line from now on (e.g. a configured API key)."""
    if value and len(value) >= _MIN_SECRET_LENGTH:
        _secrets.add(value)


def register_env_secrets(environ: dict[str, str] | None = None) -> None:
    """Register the values of secret-named variables and passwords in URL-valued ones."""
    env = os.environ if environ is None else environ
    for name, value in env.items():
        if _SECRET_ENV_NAME.search(name):
            register_secret(value)
        for match in _URL_PASSWORD.finditer(value):
            register_secret(match.group(1))


def redact(text: str) -> str:
    """Return `text` with every secret this module recognizes replaced by `***`."""
    for secret in _secrets:
        if secret in text:
            text = text.replace(secret, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text


# Context.


def bind_request(request_id: str, scope: MutableMapping[str, Any]) -> None:
    """Tag this task's log lines with the request (its id, and its path parameters once routed).

    Each ASGI request runs in its own task, so the binding ends with the request.
    """
    _request.set((request_id, scope))


def request_id() -> str | None:
    """The id of the request being served, if any."""
    request = _request.get()
    return request[0] if request is not None else None


def bind_run(app: str, user: str, session: str, invocation: str) -> None:
    """Tag this task's log lines with the run being served."""
    _run.set((app, user, session, invocation))


def context_fields() -> dict[str, str]:
    """The ids known for the current log line (request, trace, span, app, user, ...)."""
    fields: dict[str, str] = {}
    request = _request.get()
    if request is not None:
        fields["request_id"] = request[0]
        params = request[1].get("path_params") or {}
        for key, name in (("app", "app"), ("uid", "user"), ("sid", "session")):
            value = params.get(key)
            if isinstance(value, str):
                fields[name] = value
    ids = tracing.current_ids()
    if ids is not None:
        fields["trace_id"], fields["span_id"] = ids
    run = _run.get()
    if run is not None:
        fields["app"], fields["user"], fields["session"], fields["invocation"] = run
    return fields


# Formatters.


_GENERATED = frozenset({"trace_id", "span_id"})


class JsonFormatter(logging.Formatter):
    """One JSON object per line, secrets scrubbed."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a JSON line."""
        created = dt.datetime.fromtimestamp(record.created, tz=dt.UTC)
        line: dict[str, Any] = {
            "time": created.strftime("%Y-%m-%dT%H:%M:%S.") + f"{created.microsecond // 1000:03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": redact(record.getMessage()),
        }
        for key, field in context_fields().items():
            # Ids come from callers (paths, headers): a token pasted there is still a token.
            line[key] = field if key in _GENERATED else redact(field)
        if record.exc_info:
            line["exception"] = redact(self.formatException(record.exc_info))
        elif record.exc_text:
            line["exception"] = redact(record.exc_text)
        return json.dumps(line, ensure_ascii=False)


class RedactingFormatter(logging.Formatter):
    """Another formatter's lines (uvicorn's coloured ones), secrets scrubbed."""

    def __init__(self, inner: logging.Formatter) -> None:
        super().__init__()
        self.inner = inner

    def format(self, record: logging.LogRecord) -> str:
        """Format with the inner formatter, then scrub."""
        return redact(self.inner.format(record))


def redacting_formatter(inner: str, **kwargs: Any) -> logging.Formatter:
    """dictConfig factory: `inner` (a dotted class path) built with `kwargs`, then scrubbed."""
    module, _, name = inner.rpartition(".")
    cls = getattr(importlib.import_module(module), name)
    return RedactingFormatter(cls(**kwargs))


def json_formatter() -> logging.Formatter:
    """dictConfig factory of `JsonFormatter`."""
    return JsonFormatter()


_LOGGERS = ("", "uvicorn", "uvicorn.error", "uvicorn.access", "app")


def install(log_format: str, level: str) -> None:
    """Put our formatters on the handlers already configured (e.g. by `uvicorn` itself).

    Idempotent. With `json`, the `app` loggers get a stderr handler if nothing handles them.
    """
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {FORMATS}, got {log_format!r}")
    register_env_secrets()
    handled = False
    for name in _LOGGERS:
        for handler in logging.getLogger(name).handlers:
            handled = True
            _set_formatter(handler, log_format)
    if log_format == "json" and not handled:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(JsonFormatter())
        app_logger = logging.getLogger("app")
        app_logger.addHandler(handler)
        app_logger.setLevel(level.upper())


def _set_formatter(handler: logging.Handler, log_format: str) -> None:
    current = handler.formatter
    if log_format == "json":
        if not isinstance(current, JsonFormatter):
            handler.setFormatter(JsonFormatter())
    elif not isinstance(current, RedactingFormatter | JsonFormatter):
        handler.setFormatter(RedactingFormatter(current or logging.Formatter()))
