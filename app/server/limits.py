"""Request limits checked before routing: body size, control characters in the path, NUL in
the query string."""

from __future__ import annotations

import json
import re
from typing import Any

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.server.errors import PROBLEM_MEDIA_TYPE, problem_body
from app.server.text_checks import FORBIDDEN_TEXT_MSG, FORBIDDEN_TEXT_TYPE


class BodyTooLargeError(HTTPException):
    """Raised from `receive` when a streamed (chunked) body passes the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, _too_large(limit))


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class RequestLimitsMiddleware:
    """Answer 413 `payload_too_large` for bodies over `max_body_bytes`, 422 for bad paths and
    query strings holding NUL.

    A path with a control character (an id like `a%00b`) is refused before routing, so it is
    a 422 on every route, including `{name:path}` ones whose regex cannot match a newline.

    A declared `Content-Length` over the limit is refused without reading a byte. A chunked
    body is counted as it arrives; the chunk that crosses the limit raises `BodyTooLargeError`
    inside the route's body read, which the error handlers turn into the same 413.
    """

    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        if _CONTROL.search(scope["path"]):
            detail = "The path must not contain control characters."
            error = {"loc": ["path"], "msg": detail, "type": "string_pattern_mismatch"}
            await _send_problem(send, 422, "invalid_request", detail, errors=[error])
            return
        if b"%00" in scope["query_string"]:
            # A lone surrogate cannot get here: query strings are decoded with replacement.
            error = {"loc": ["query"], "msg": FORBIDDEN_TEXT_MSG, "type": FORBIDDEN_TEXT_TYPE}
            detail = "The query string must not contain NUL characters."
            await _send_problem(send, 422, "invalid_request", detail, errors=[error])
            return
        limit = self.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_problem(
                        send, 400, "invalid_request", "The Content-Length header is not a number."
                    )
                    return
                if declared > limit:
                    await _send_problem(send, 413, "payload_too_large", _too_large(limit))
                    return
                # Declared and within the limit: the server enforces the length itself.
                await self.app(scope, receive, send)
                return

        received = 0
        started = False

        async def counting_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLargeError(limit)
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLargeError:
            # Read outside a route (no handler caught it): answer here if we still can.
            if started:
                raise
            await _send_problem(send, 413, "payload_too_large", _too_large(limit))


def _too_large(limit: int) -> str:
    return f"The request body exceeds {limit} bytes."


async def _send_problem(send: Send, status: int, code: str, detail: str, **extra: Any) -> None:
    body = json.dumps(problem_body(status, code, detail, **extra)).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", PROBLEM_MEDIA_TYPE.encode()),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})
