"""AuthMiddleware: one check in front of every route, bound to the path's app and user.

Matching the raw path (rather than a dependency on each route) covers every route under
`/apps/{app}/users/{uid}/...` (and the ADK-compatible `/adk/apps/{app}/users/{uid}/...`) at
once: REST, `:run`, events, artifacts, the live WebSocket, and routes added later. Everything
else needs a valid credential too, except `OPEN_PATHS`. The caller is stored as
`scope["state"]["principal"]` for routes that filter by it.
"""

from __future__ import annotations

import json
import logging
import re
from typing import Any
from urllib.parse import parse_qsl, urlencode

from starlette.types import ASGIApp, Receive, Scope, Send

from app.errors import DatabaseUnavailableError
from app.server.errors import problem, problem_body
from app.server.security.authenticator import Authenticator, credential_from_headers
from app.server.security.principal import STATE_KEY, Principal

logger = logging.getLogger(__name__)

OPEN_PATHS = frozenset(
    {"/healthz", "/readyz", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}
)
"""Paths served without a credential."""

OPEN_PREFIXES = ("/docs/assets/",)
"""Path prefixes served without a credential (the docs pages' scripts and styles)."""

QUERY_BOUND_PATHS = frozenset({"/adk/run_live"})
"""Paths bound to the app and user of their `app_name`/`user_id` query parameters. (`/adk/run`
and `/adk/run_sse` name them in the body: their route checks them.)"""

CLOSE_UNAUTHENTICATED = 4401
CLOSE_FORBIDDEN = 4403

CLOSE_INTERNAL = 1011
_CODES = {401: "unauthenticated", 403: "forbidden", 503: "database_unavailable"}
_BOUND = re.compile(r"^(?:/adk)?/apps/(?P<app>[^/]+)(?:/users/(?P<uid>[^/]+))?")
_TOKEN_PARAM = "access_token"


class AuthMiddleware:
    """Refuse callers without a valid credential (401) or outside their user and apps (403)."""

    def __init__(self, app: ASGIApp, cors_origins: list[str]) -> None:
        self.app = app
        self.origins = None if not cors_origins or "*" in cors_origins else set(cors_origins)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind == "http":
            refusal = await self._check(scope, None)
            if refusal is None:
                await self.app(scope, receive, send)
                return
            status, detail = refusal
            response = problem(status, _CODES[status], detail)
            if status == 401:
                response.headers["WWW-Authenticate"] = 'Bearer realm="agent-service"'
            await response(scope, receive, send)
        elif kind == "websocket":
            # Taken out of the scope before anything (uvicorn's access log included) prints it.
            token = _pop_query_token(scope)
            refusal = self._check_origin(scope) or await self._check(scope, token)
            if refusal is None:
                await self.app(scope, receive, send)
                return
            await _close_websocket(receive, send, *refusal)
        else:
            await self.app(scope, receive, send)

    def _check_origin(self, scope: Scope) -> tuple[int, str] | None:
        if self.origins is None:
            return None
        origin = dict(scope["headers"]).get(b"origin")
        if origin is None or origin.decode("latin-1") in self.origins:
            return None  # no Origin: not a browser, so not a cross-site request
        return 403, "This Origin may not open a WebSocket here."

    async def _check(self, scope: Scope, token: str | None) -> tuple[int, str] | None:
        """Return (status, detail) when the caller is refused, else None."""
        path: str = scope["path"]
        authenticator: Authenticator | None = scope["app"].state.services.authenticator
        if authenticator is None or path in OPEN_PATHS or path.startswith(OPEN_PREFIXES):
            return None
        credential = credential_from_headers(dict(scope["headers"])) or token
        if credential is None:
            return 401, "A credential is required: Authorization: Bearer <API key or JWT>."
        try:
            principal = await authenticator.authenticate(credential)
        except DatabaseUnavailableError as exc:
            logger.warning("api key lookup failed: %s", exc)
            return 503, exc.public_detail
        if principal is None:
            return 401, "The credential is not valid (unknown, revoked or expired)."
        scope.setdefault("state", {})[STATE_KEY] = principal
        if path in QUERY_BOUND_PATHS:
            return _check_query(principal, scope)
        return _check_path(principal, path)


def _check_path(principal: Principal, path: str) -> tuple[int, str] | None:
    match = _BOUND.match(path)
    if match is None:
        return None
    if not principal.may_use_app(match["app"]):
        return 403, "This credential may not use this app."
    uid = match["uid"]
    if uid is not None and not principal.may_act_for(uid):
        return 403, "This credential may not act for this user."
    return None


def _check_query(principal: Principal, scope: Scope) -> tuple[int, str] | None:
    """The ADK live route names its app and user in the query (the last value counts)."""
    pairs = parse_qsl(scope.get("query_string", b"").decode("latin-1"), keep_blank_values=True)
    params = dict(pairs)
    app, uid = params.get("app_name"), params.get("user_id")
    if app is not None and not principal.may_use_app(app):
        return 403, "This credential may not use this app."
    if uid is not None and not principal.may_act_for(uid):
        return 403, "This credential may not act for this user."
    return None


def _pop_query_token(scope: Scope) -> str | None:
    raw: bytes = scope.get("query_string", b"")
    if _TOKEN_PARAM.encode() not in raw:
        return None
    pairs = parse_qsl(raw.decode("latin-1"), keep_blank_values=True)
    tokens = [value for name, value in pairs if name == _TOKEN_PARAM]
    scope["query_string"] = urlencode([(n, v) for n, v in pairs if n != _TOKEN_PARAM]).encode()
    return tokens[-1] if tokens else None


async def _close_websocket(receive: Receive, send: Send, status: int, detail: str) -> None:
    """Accept (close codes need an open socket), send an error frame, close with 44xx."""
    message: Any = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    body = problem_body(status, _CODES[status], detail)
    await send({"type": "websocket.send", "text": json.dumps({"error": body})})
    close = {401: CLOSE_UNAUTHENTICATED, 403: CLOSE_FORBIDDEN}.get(status, CLOSE_INTERNAL)
    await send({"type": "websocket.close", "code": close, "reason": detail[:120]})
