"""ObservabilityMiddleware: request ids, HTTP metrics by route template, the SERVER span.

A pure ASGI middleware (no per-message wrapper objects), outermost among the app's own:

- every response (and WebSocket accept) carries `X-Request-Id`: the caller's when it is sane
  (1 to 128 of `A-Z a-z 0-9 . _ : - +`), a fresh one otherwise; log lines carry it too;
- `http_requests` / `http_request_duration_seconds` by method, route *template* (what the
  router matched, read from the scope after the app ran; `unmatched` for a 404 no route
  matched) and status;
- open live connections (WebSockets accepted);
- with tracing on, a SERVER span per request or connection, continuing a `traceparent`.
"""

from __future__ import annotations

import re
import time
import uuid
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.observability import logs, metrics, tracing

REQUEST_ID_HEADER = b"x-request-id"
_SANE_REQUEST_ID = re.compile(rb"[A-Za-z0-9._:+-]{1,128}")
_METHODS = frozenset({"GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"})
UNMATCHED = "unmatched"
"""Route label of requests no route matched (404s of unknown paths, with any path)."""


def request_id_from(headers: list[tuple[bytes, bytes]]) -> bytes:
    """The caller's X-Request-Id when it is sane, else a new random one."""
    for key, value in headers:
        if key == REQUEST_ID_HEADER:
            if _SANE_REQUEST_ID.fullmatch(value):
                return value
            break
    return uuid.uuid4().hex.encode()


def route_of(scope: Scope) -> str:
    """The route template the router matched (never the raw path)."""
    route = scope.get("route")
    path = getattr(route, "path", None)
    return path if isinstance(path, str) else UNMATCHED


class ObservabilityMiddleware:
    """See the module docstring."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            await self._http(scope, receive, send)
        elif kind == "websocket":
            await self._websocket(scope, receive, send)
        else:
            await self.app(scope, receive, send)

    async def _http(self, scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        headers = scope["headers"]
        request_id = request_id_from(headers)
        logs.bind_request(request_id.decode(), scope)
        method = scope["method"]
        method = method if method in _METHODS else "OTHER"
        span = None
        if tracing.enabled():
            span = tracing.start_server_span(
                method,
                headers,
                {"http.request.method": method, "url.path": scope["path"], "url.scheme": "http"},
            )
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                # A new list: responses may reuse one constant header list for every request.
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, request_id)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            route = route_of(scope)
            metrics.http_request(method, route, status, time.perf_counter() - started)
            if span is not None:
                tracing.end_server_span(
                    span,
                    f"{method} {route}" if route != UNMATCHED else method,
                    {"http.route": route, "http.response.status_code": status}
                    if route != UNMATCHED
                    else {"http.response.status_code": status},
                    error=status >= 500,
                )

    async def _websocket(self, scope: Scope, receive: Receive, send: Send) -> None:
        request_id = request_id_from(scope["headers"])
        logs.bind_request(request_id.decode(), scope)
        span = None
        if tracing.enabled():
            span = tracing.start_server_span(
                "WS", scope["headers"], {"url.path": scope["path"], "url.scheme": "ws"}
            )
        accepted = False

        async def send_with_id(message: Message) -> None:
            nonlocal accepted
            if message["type"] == "websocket.accept":
                message["headers"] = [*message.get("headers", ()), (REQUEST_ID_HEADER, request_id)]
                accepted = True
                metrics.live_connection(1)
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            if accepted:
                metrics.live_connection(-1)
            if span is not None:
                route = route_of(scope)
                attributes: dict[str, Any] = {"http.route": route} if route != UNMATCHED else {}
                tracing.end_server_span(span, f"WS {route}", attributes, error=False)
