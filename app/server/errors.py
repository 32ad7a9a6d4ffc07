"""Map errors to RFC 9457 problem+json responses; every error response goes through `problem()`.

Domain errors (`app.errors`) carry a stable `code`; this module only adds the HTTP status.
Errors raised after an SSE stream started are sent in-band with the same body
(`problem_for()`), see `server/_run_stream.py`.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from app.errors import (
    AgentServiceError,
    ConflictError,
    DatabaseUnavailableError,
    InvalidRequestError,
    LlmCallsLimitExceededError,
    ModelError,
    NotFoundError,
    PayloadTooLargeError,
    ShuttingDownError,
)
from app.observability import logs
from app.server.quotas.limiter import QuotaExceededError
from app.server.security.principal import ForbiddenError, UnauthenticatedError
from app.server.text_checks import printable

logger = logging.getLogger(__name__)

PROBLEM_MEDIA_TYPE = "application/problem+json"
INTERNAL_DETAIL = "The server failed to handle the request."


class AppUnavailableError(AgentServiceError):
    """The app exists but failed to load; see `GET /apps` for its error."""

    code = "app_unavailable"

    def __init__(self, app_name: str) -> None:
        super().__init__(f"App {app_name!r} failed to load; see GET /apps for the error.")
        self.app_name = app_name


class UnsupportedMediaTypeError(AgentServiceError):
    """The request body is not JSON."""

    code = "unsupported_media_type"


_STATUS: dict[type[AgentServiceError], int] = {
    InvalidRequestError: 400,
    UnauthenticatedError: 401,
    ForbiddenError: 403,
    NotFoundError: 404,
    ConflictError: 409,
    PayloadTooLargeError: 413,
    UnsupportedMediaTypeError: 415,
    LlmCallsLimitExceededError: 422,
    QuotaExceededError: 429,
    ModelError: 502,
    DatabaseUnavailableError: 503,
    AppUnavailableError: 503,
    ShuttingDownError: 503,
}

# Codes for errors the framework raises itself (routing, method, body parsing).
_HTTP_CODES: dict[int, str] = {
    400: "invalid_request",
    401: "unauthenticated",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    413: "payload_too_large",
    415: "unsupported_media_type",
    422: "invalid_request",
}


def status_of(exc: BaseException) -> int:
    """Return the HTTP status for an exception (500 for anything unexpected)."""
    if isinstance(exc, AgentServiceError):
        return next((_STATUS[c] for c in type(exc).__mro__ if c in _STATUS), 500)
    return 500


def problem_body(status: int, code: str, detail: str, **extra: Any) -> dict[str, Any]:
    """Return the problem+json body for a status, stable code and human-readable detail."""
    return {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
        **extra,
    }


def problem_for(exc: BaseException) -> dict[str, Any]:
    """Return the problem body for any exception, never leaking internals of unexpected ones."""
    status = status_of(exc)
    if isinstance(exc, AgentServiceError) and status != 500:
        return problem_body(status, exc.code, exc.public_detail)
    return problem_body(500, "internal", INTERNAL_DETAIL)


def problem(status: int, code: str, detail: str, **extra: Any) -> JSONResponse:
    """Return a problem+json response."""
    return JSONResponse(
        problem_body(status, code, detail, **extra),
        status_code=status,
        media_type=PROBLEM_MEDIA_TYPE,
    )


async def _on_service_error(request: Request, exc: Exception) -> JSONResponse:
    status = status_of(exc)
    if status == 500:
        logger.error("unhandled service error path=%s error=%r", request.url.path, exc)
    elif isinstance(exc, DatabaseUnavailableError):
        # The body hides where the database is; the log says it, for the operator.
        logger.warning("database unavailable path=%s error=%s", request.url.path, exc)
    body = problem_for(exc)
    response = problem(body["status"], body["code"], body["detail"])
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="agent-service"'
    retry_after = getattr(exc, "retry_after", None)
    if retry_after is not None:
        response.headers["Retry-After"] = str(retry_after)
    headers = getattr(exc, "headers", None)
    if isinstance(headers, dict):
        response.headers.update(headers)
    return response


async def _on_http_error(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, StarletteHTTPException)
    status = exc.status_code
    code = _HTTP_CODES.get(status, "internal" if status >= 500 else "invalid_request")
    detail = exc.detail if isinstance(exc.detail, str) else HTTPStatus(status).phrase
    response = problem(status, code, detail)
    if exc.headers:
        response.headers.update(exc.headers)
    if status == 405:
        # Starlette lists only the methods of the first route matching the path; the
        # session path has one route per method.
        response.headers["Allow"] = ", ".join(allowed_methods(request))
    return response


_METHODS = ("DELETE", "GET", "HEAD", "PATCH", "POST", "PUT")


def allowed_methods(request: Request) -> list[str]:
    """Return every method some route of the app answers on this request's path."""
    routes = request.app.router.routes
    return [
        method
        for method in _METHODS
        if any(
            route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes
        )
    ]


def _clean_error(error: Any) -> dict[str, Any]:
    """Keep the JSON-safe parts of a pydantic error (`input`/`ctx` may hold arbitrary objects)."""
    return {
        "loc": [printable(str(part)) for part in error.get("loc", ())],
        "msg": printable(str(error.get("msg", ""))),
        "type": str(error.get("type", "")),
    }


async def _on_invalid_request(request: Request, exc: Exception) -> JSONResponse:
    assert isinstance(exc, RequestValidationError)
    errors = [_clean_error(e) for e in exc.errors()]
    if any(e["type"] == "json_invalid" for e in errors):
        detail = "The request body is not valid JSON."
    else:
        where = ", ".join(".".join(e["loc"]) for e in errors[:5]) or "request"
        detail = f"Invalid request: {where}."
    return problem(422, "invalid_request", detail, errors=errors)


async def _on_unexpected(request: Request, exc: Exception) -> JSONResponse:
    # Starlette re-raises after this handler, so the server logs the traceback once. This
    # response bypasses the app's middleware: it carries the request id itself.
    response = problem(500, "internal", INTERNAL_DETAIL)
    request_id = logs.request_id()
    if request_id is not None:
        response.headers["x-request-id"] = request_id
    return response


def install_error_handlers(app: FastAPI) -> None:
    """Answer every error, including the framework's own, with problem+json."""
    app.add_exception_handler(AgentServiceError, _on_service_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_error)
    app.add_exception_handler(RequestValidationError, _on_invalid_request)
    app.add_exception_handler(Exception, _on_unexpected)
