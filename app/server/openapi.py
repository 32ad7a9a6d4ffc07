"""The OpenAPI document: FastAPI's, corrected to say what the server really answers.

FastAPI documents errors as `application/json` and only the 422s it raises itself. Every
error here is `application/problem+json` (`ProblemOut`), and a few statuses come from code
FastAPI cannot see: the request limits (400, 413, 415), the body checks (400 for a body that
cannot be parsed), and the service errors (404 unknown app, 503 database unavailable).
"""

from __future__ import annotations

from http import HTTPStatus
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.server.errors import PROBLEM_MEDIA_TYPE
from app.server.schemas import RunEndOut
from app.server.security.middleware import OPEN_PATHS

_PROBLEM_REF = {"$ref": "#/components/schemas/ProblemOut"}
_FASTAPI_ERROR_SCHEMAS = ("HTTPValidationError", "ValidationError")

_BODY_ERRORS = {
    "400": "The body is not parsable (not UTF-8, nested too deeply) or its Content-Length "
    "is not a number.",
    "413": "The body is larger than `AGENT_SERVICE_MAX_BODY_BYTES`.",
    "415": "The body is not declared as JSON.",
}
_INVALID = (
    "A parameter or a body field is invalid (`errors` names each one); this includes NUL "
    "characters and lone surrogates anywhere in the body or the query string."
)
_UNAVAILABLE = "The database is unavailable, or the app failed to load."
_UNAUTHENTICATED = (
    "No credential, or one that is unknown, revoked or expired (only with "
    "`AGENT_SERVICE_AUTH` on); the response carries `WWW-Authenticate: Bearer`."
)
_FORBIDDEN = "The credential may not use this app or act for this user."
_SECURITY_SCHEMES = {
    "bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "An API key (`agent-service keys create`) or a JWT, per AGENT_SERVICE_AUTH.",
    },
    "apiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
}


def install_openapi(app: FastAPI) -> None:
    """Make `app.openapi()` return the corrected document (built once, then cached)."""

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                summary=app.summary,
                description=app.description,
                routes=app.routes,
            )
            app.openapi_schema = correct(document)
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def correct(document: dict[str, Any]) -> dict[str, Any]:
    """Return the document with problem+json errors and the statuses FastAPI cannot see."""
    for path, operations in document.get("paths", {}).items():
        for method, operation in operations.items():
            responses: dict[str, Any] = operation.setdefault("responses", {})
            if "requestBody" in operation:
                for status, description in _BODY_ERRORS.items():
                    responses.setdefault(status, {"description": description})
            if path not in OPEN_PATHS:
                operation["security"] = [{"bearer": []}, {"apiKey": []}]
                responses.setdefault("401", {"description": _UNAUTHENTICATED})
                if path.startswith("/apps/{app}"):
                    responses.setdefault("403", {"description": _FORBIDDEN})
            if path.startswith("/apps/{app}/users/"):
                responses.setdefault("404", {"description": "Unknown app."})
                responses.setdefault("503", {"description": _UNAVAILABLE})
            if operation.get("parameters") or "requestBody" in operation:
                responses["422"] = {"description": _INVALID}
            if path.endswith("/sessions") and method == "get":
                responses["400"] = {"description": "The `pageToken` is not one we issued."}
            for status, response in responses.items():
                if int(status) >= 400:
                    response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": _PROBLEM_REF}}
                    if response.get("description") in (None, "", "Validation Error"):
                        response["description"] = HTTPStatus(int(status)).phrase
            operation["responses"] = dict(sorted(responses.items()))
    document.setdefault("components", {})["securitySchemes"] = _SECURITY_SCHEMES
    schemas = document["components"].setdefault("schemas", {})
    for name in _FASTAPI_ERROR_SCHEMAS:
        schemas.pop(name, None)
    # Named by the run's text/event-stream schema: the data of its `end` frame.
    schemas["RunEndOut"] = RunEndOut.model_json_schema(
        by_alias=True, ref_template="#/components/schemas/{model}"
    )
    document["components"]["schemas"] = dict(sorted(schemas.items()))
    return document
