"""Helpers shared by the route tests and the end-to-end tests."""

from __future__ import annotations

from typing import Any

import httpx
from fastapi import FastAPI

from app.server.deps import Services


def services_of(client: httpx.AsyncClient) -> Services:
    """Return the Services of the app behind an in-process client."""
    app: FastAPI = client.app  # type: ignore[attr-defined]
    return app.state.services  # type: ignore[no-any-return]


def assert_problem(response: httpx.Response, status: int, code: str) -> dict[str, Any]:
    """Assert a problem+json response with that status and code; return its body."""
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith("application/problem+json")
    body: dict[str, Any] = response.json()
    assert body["status"] == status
    assert body["code"] == code
    assert {"type", "title", "detail"} <= body.keys()
    assert "Traceback" not in response.text
    return body


def parse_sse(text: str) -> list[dict[str, Any]]:
    """Split an SSE body into frames: {"id"?, "event"?, "data"?, "comment"?}."""
    frames: list[dict[str, Any]] = []
    assert text.endswith("\n\n") or text == "", repr(text[-50:])
    for block in text.split("\n\n"):
        if not block:
            continue
        frame: dict[str, Any] = {}
        for line in block.split("\n"):
            if line.startswith(":"):
                frame["comment"] = line[1:].strip()
                continue
            field, _, value = line.partition(": ")
            assert field in ("id", "event", "data"), line
            assert field not in frame, f"duplicate {field} in {block!r}"
            frame[field] = value
        frames.append(frame)
    return frames


def message(text: str) -> dict[str, Any]:
    """A RunRequest newMessage."""
    return {"role": "user", "parts": [{"text": text}]}
