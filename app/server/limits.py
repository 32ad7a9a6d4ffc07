"""Body-size limit: refuse oversized request bodies before reading them whole."""

from __future__ import annotations

import json

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.server.errors import PROBLEM_MEDIA_TYPE, problem_body


class BodyTooLargeError(HTTPException):
    """Raised from `receive` when a streamed (chunked) body passes the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, f"The request body exceeds {limit} bytes.")


class BodySizeLimitMiddleware:
    """Answer 413 `payload_too_large` for bodies over `max_body_bytes`.

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
        limit = self.max_body_bytes
        for name, value in scope["headers"]:
            if name == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    await _send_413(send, "The Content-Length header is not a number.", 400)
                    return
                if declared > limit:
                    await _send_413(send, f"The request body exceeds {limit} bytes.")
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
            await _send_413(send, f"The request body exceeds {limit} bytes.")


async def _send_413(send: Send, detail: str, status: int = 413) -> None:
    code = "payload_too_large" if status == 413 else "invalid_request"
    body = json.dumps(problem_body(status, code, detail)).encode()
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
