"""Bad input on every route is a problem+json 4xx, never a 500."""

from __future__ import annotations

import httpx
import pytest

from .helpers import assert_problem, message

OK_IDS = {"app": "scripted", "uid": "u1", "sid": "s", "name": "note.txt"}

ROUTES: list[tuple[str, str]] = [
    ("GET", "/apps/{app}"),
    ("POST", "/apps/{app}/users/{uid}/sessions"),
    ("GET", "/apps/{app}/users/{uid}/sessions"),
    ("GET", "/apps/{app}/users/{uid}/sessions/{sid}"),
    ("PATCH", "/apps/{app}/users/{uid}/sessions/{sid}"),
    ("DELETE", "/apps/{app}/users/{uid}/sessions/{sid}"),
    ("GET", "/apps/{app}/users/{uid}/sessions/{sid}/events"),
    ("POST", "/apps/{app}/users/{uid}/sessions/{sid}:run"),
    ("GET", "/apps/{app}/users/{uid}/sessions/{sid}/artifacts"),
    ("GET", "/apps/{app}/users/{uid}/sessions/{sid}/artifacts/{name}"),
    ("GET", "/apps/{app}/users/{uid}/sessions/{sid}/artifacts/{name}/versions"),
    ("DELETE", "/apps/{app}/users/{uid}/sessions/{sid}/artifacts/{name}"),
]

BODY_ROUTES = [(m, p) for m, p in ROUTES if m in ("POST", "PATCH")]

_VALID_BODY = {
    "POST /apps/{app}/users/{uid}/sessions": {"sessionId": "x"},
    "PATCH /apps/{app}/users/{uid}/sessions/{sid}": {"stateDelta": {"a": 1}},
    "POST /apps/{app}/users/{uid}/sessions/{sid}:run": {"newMessage": message("chat")},
}


def _path(template: str, **override: str) -> str:
    return template.format(**{**OK_IDS, **override})


def _body(method: str, template: str) -> dict[str, object] | None:
    return _VALID_BODY.get(f"{method} {template}")


@pytest.mark.parametrize(("method", "template"), ROUTES)
@pytest.mark.parametrize(
    "bad",
    ["ctl%01char", "nul%00", "del%7F", "x" * 300, "newline%0A"],
    ids=["control", "nul", "del", "too-long", "newline"],
)
async def test_bad_ids_are_422(
    client: httpx.AsyncClient, method: str, template: str, bad: str
) -> None:
    params = ["app", "uid", "sid", "name"]
    for param in params:
        if "{" + param + "}" not in template:
            continue
        url = _path(template, **{param: bad})
        response = await client.request(method, url, json=_body(method, template))
        assert_problem(response, 422, "invalid_request")


@pytest.mark.parametrize(("method", "template"), ROUTES)
async def test_unknown_app_is_404(client: httpx.AsyncClient, method: str, template: str) -> None:
    url = _path(template, app="nope")
    response = await client.request(method, url, json=_body(method, template))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] in ("app_not_found", "session_not_found", "artifact_not_found")


@pytest.mark.parametrize(("method", "template"), BODY_ROUTES)
async def test_malformed_json_is_422(client: httpx.AsyncClient, method: str, template: str) -> None:
    response = await client.request(
        method,
        _path(template),
        content=b'{"sessionId": ',
        headers={"content-type": "application/json"},
    )
    body = assert_problem(response, 422, "invalid_request")
    assert body["detail"] == "The request body is not valid JSON."


@pytest.mark.parametrize(("method", "template"), BODY_ROUTES)
async def test_wrong_content_type_is_415(
    client: httpx.AsyncClient, method: str, template: str
) -> None:
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data"):
        response = await client.request(
            method, _path(template), content=b"{}", headers={"content-type": content_type}
        )
        assert_problem(response, 415, "unsupported_media_type")


@pytest.mark.parametrize(("method", "template"), BODY_ROUTES)
async def test_wrong_types_and_unknown_fields_are_422(
    client: httpx.AsyncClient, method: str, template: str
) -> None:
    await client.post("/apps/scripted/users/u1/sessions", json={"sessionId": "s"})
    for body in ([], 42, {"unknownField": 1}, {"sessionId": 5, "stateDelta": "x"}):
        response = await client.request(method, _path(template), json=body)
        assert_problem(response, 422, "invalid_request")


@pytest.mark.parametrize(("method", "template"), BODY_ROUTES)
async def test_huge_bodies_are_413(make_client, method: str, template: str) -> None:  # type: ignore[no-untyped-def]
    async with make_client(max_body_bytes=4096) as c:
        big = b'{"state": {"k": "' + b"x" * 10_000 + b'"}}'
        declared = await c.request(
            method, _path(template), content=big, headers={"content-type": "application/json"}
        )
        assert_problem(declared, 413, "payload_too_large")

        async def chunks():  # type: ignore[no-untyped-def]
            for _ in range(10):
                yield b" " * 1000

        chunked = await c.request(
            method,
            _path(template),
            content=chunks(),
            headers={"content-type": "application/json"},
        )
        assert "content-length" not in chunked.request.headers
        assert_problem(chunked, 413, "payload_too_large")


async def test_body_within_the_limit_passes(make_client) -> None:  # type: ignore[no-untyped-def]
    async with make_client(max_body_bytes=4096) as c:

        async def chunks():  # type: ignore[no-untyped-def]
            yield b'{"sessionId": '
            yield b'"chunked"}'

        response = await c.post(
            "/apps/scripted/users/u1/sessions",
            content=chunks(),
            headers={"content-type": "application/json"},
        )
        assert response.status_code == 201
        assert response.json()["id"] == "chunked"


async def test_bad_content_length_is_400(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/apps/scripted/users/u1/sessions",
        content=b"{}",
        headers={"content-type": "application/json", "content-length": "abc"},
    )
    assert_problem(response, 400, "invalid_request")
