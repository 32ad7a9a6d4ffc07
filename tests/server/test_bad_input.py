"""Bad input on every route is a problem+json 4xx, never a 500."""

from __future__ import annotations

import json
from urllib.parse import quote

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


# --- wrong types inside a Content ---------------------------------------------------------

_ENUM_PARTS = {
    "executableCode.language": {"executableCode": {"language": 1.5, "code": "x"}},
    "codeExecutionResult.outcome": {"codeExecutionResult": {"outcome": 1, "output": "x"}},
    "toolCall.toolType": {"toolCall": {"toolType": True}},
    "toolResponse.toolType": {"toolResponse": {"toolType": [1]}},
    "mediaProcessing": {"text": "x", "mediaProcessing": {"a": 1}},
    "mediaResolution.level": {"text": "x", "mediaResolution": {"level": 2}},
    "functionResponse.scheduling": {
        "functionResponse": {"name": "f", "response": {}, "scheduling": 3}
    },
}


@pytest.mark.parametrize("field", sorted(_ENUM_PARTS))
@pytest.mark.parametrize("value", ["number", "unknown-string"])
async def test_bad_enum_values_in_new_message_are_422_naming_the_field(
    client: httpx.AsyncClient, field: str, value: str
) -> None:
    part = _ENUM_PARTS[field]
    if value == "unknown-string":  # accepted (with a warning) by google-genai itself
        part = _replace_leaf(part, field, "NOT_A_MEMBER")
    body = {"newMessage": {"role": "user", "parts": [part]}, "createSession": True}
    response = await client.post(_path(ROUTES[7][1]), json=body)

    problem = assert_problem(response, 422, "invalid_request")
    expected = ["body", "newMessage", "parts", "0", *field.split(".")]
    assert [e["loc"] for e in problem["errors"]] == [expected]
    assert problem["errors"][0]["type"] == "enum"


async def test_enum_names_still_match_case_insensitively(client: httpx.AsyncClient) -> None:
    part = {"executableCode": {"language": "python", "code": "print(1)"}}
    body = {"newMessage": {"role": "user", "parts": [{"text": "chat"}, part]}}
    body["createSession"] = True
    response = await client.post(_path(ROUTES[7][1]), json=body)
    assert response.status_code == 200, response.text


def _replace_leaf(part: dict[str, object], field: str, value: object) -> dict[str, object]:
    copy = json.loads(json.dumps(part))
    node = copy
    *parents, leaf = field.split(".")
    for key in parents:
        node = node[key]
    node[leaf] = value
    return copy  # type: ignore[no-any-return]


# --- NUL characters and lone surrogates ---------------------------------------------------

_FORBIDDEN = {"nul": "a\x00b", "surrogate": "a\ud800b", "low-surrogate": "\udfff"}


def _encoded(body: object) -> bytes:
    # json.dumps escapes both as \uXXXX, exactly as a client would send them.
    return json.dumps(body).encode()


_TEXT_BODIES: dict[str, tuple[str, str, object, list[str]]] = {
    "create-state-value": (
        "POST",
        ROUTES[1][1],
        {"state": {"k": "{bad}"}},
        ["body", "state", "k"],
    ),
    "create-state-key": ("POST", ROUTES[1][1], {"state": {"{bad}": 1}}, ["body", "state", "{bad}"]),
    "create-session-id": ("POST", ROUTES[1][1], {"sessionId": "{bad}"}, ["body", "sessionId"]),
    "patch-nested": (
        "PATCH",
        ROUTES[4][1],
        {"stateDelta": {"k": [1, {"x": "{bad}"}]}},
        ["body", "stateDelta", "k", "1", "x"],
    ),
    "run-text": (
        "POST",
        ROUTES[7][1],
        {"newMessage": {"role": "user", "parts": [{"text": "{bad}"}]}},
        ["body", "newMessage", "parts", "0", "text"],
    ),
    "run-state-delta": (
        "POST",
        ROUTES[7][1],
        {"stateDelta": {"{bad}": "v"}},
        ["body", "stateDelta", "{bad}"],
    ),
    "run-invocation-id": (
        "POST",
        ROUTES[7][1],
        {"invocationId": "{bad}"},
        ["body", "invocationId"],
    ),
    "run-metadata": (
        "POST",
        ROUTES[7][1],
        {"newMessage": message("hi"), "runConfig": {"customMetadata": {"t": "{bad}"}}},
        ["body", "runConfig", "customMetadata", "t"],
    ),
}


def _fill(value: object, bad: str) -> object:
    return json.loads(json.dumps(value).replace("{bad}", json.dumps(bad)[1:-1]))


@pytest.mark.parametrize("where", sorted(_TEXT_BODIES))
@pytest.mark.parametrize("kind", sorted(_FORBIDDEN))
async def test_nul_and_lone_surrogates_in_bodies_are_422_naming_the_field(
    client: httpx.AsyncClient, where: str, kind: str
) -> None:
    await client.post("/apps/scripted/users/u1/sessions", json={"sessionId": "s"})
    method, template, body, loc = _TEXT_BODIES[where]
    bad = _FORBIDDEN[kind]
    response = await client.request(
        method,
        _path(template),
        content=_encoded(_fill(body, bad)),
        headers={"content-type": "application/json"},
    )

    problem = assert_problem(response, 422, "invalid_request")
    escaped = json.dumps(bad)[1:-1]  # the location names a bad key with it escaped
    assert problem["errors"] == [
        {
            "loc": [part.replace("{bad}", escaped) for part in loc],
            "msg": "NUL characters and lone surrogates (U+D800-U+DFFF) are not allowed",
            "type": "string_forbidden_character",
        }
    ]
    session = (await client.get("/apps/scripted/users/u1/sessions/s")).json()
    assert session["state"] == {} and session["events"] == []


async def test_surrogate_pairs_and_escaped_text_are_accepted(client: httpx.AsyncClient) -> None:
    state = {"emoji": "\U0001f600", "escaped": "\\u0000 is fine as text", "e\u00e9": "\u00e9"}
    response = await client.post(
        "/apps/scripted/users/u1/sessions",
        content=_encoded({"sessionId": "ok", "state": state}),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 201, response.text
    assert response.json()["state"] == state


@pytest.mark.parametrize(("method", "template"), ROUTES)
async def test_nul_in_the_query_string_is_422_on_every_route(
    client: httpx.AsyncClient, method: str, template: str
) -> None:
    response = await client.request(
        method, _path(template) + "?pageToken=a%00b", json=_body(method, template)
    )
    problem = assert_problem(response, 422, "invalid_request")
    assert problem["errors"][0]["loc"] == ["query"]


# --- ids that could not be used in a URL ---------------------------------------------------


@pytest.mark.parametrize("sid", ["a/b", "/", ".", "..", "x" * 129])
async def test_unusable_session_ids_are_refused_at_creation(
    client: httpx.AsyncClient, sid: str
) -> None:
    response = await client.post("/apps/scripted/users/u1/sessions", json={"sessionId": sid})
    problem = assert_problem(response, 422, "invalid_request")
    assert problem["errors"][0]["loc"] == ["body", "sessionId"]
    listed = (await client.get("/apps/scripted/users/u1/sessions")).json()
    assert listed["sessions"] == []


@pytest.mark.parametrize("sid", ["...", ".a", "a.", "a b", "caf\u00e9", "x:y", "50%", "x" * 128])
async def test_every_session_id_allowed_at_creation_is_fully_usable(
    client: httpx.AsyncClient, sid: str
) -> None:
    created = await client.post("/apps/scripted/users/u1/sessions", json={"sessionId": sid})
    assert created.status_code == 201, created.text
    url = "/apps/scripted/users/u1/sessions/" + quote(sid, safe="")

    assert (await client.get(url)).json()["id"] == sid
    run = await client.post(
        url + ":run", json={"newMessage": message("chat")}, headers={"accept": "application/json"}
    )
    assert run.status_code == 200, run.text
    assert (await client.patch(url, json={"stateDelta": {"k": 1}})).status_code == 200
    assert (await client.get(url + "/events")).json()["events"]
    assert (await client.get(url + "/artifacts")).status_code == 200
    assert (await client.delete(url)).status_code == 204
    assert (await client.get(url)).status_code == 404


async def test_run_create_session_refuses_the_same_ids(client: httpx.AsyncClient) -> None:
    response = await client.post(
        "/apps/scripted/users/u1/sessions/..:run",
        json={"newMessage": message("chat"), "createSession": True},
    )
    problem = assert_problem(response, 422, "invalid_request")
    assert problem["errors"][0]["loc"] == ["path", "sid"]
    listed = (await client.get("/apps/scripted/users/u1/sessions")).json()
    assert listed["sessions"] == []


async def test_405_lists_every_method_of_the_path(client: httpx.AsyncClient) -> None:
    response = await client.put("/apps/scripted/users/u1/sessions/s", json={})
    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "DELETE, GET, PATCH"

    response = await client.delete("/apps/scripted/users/u1/sessions")
    assert_problem(response, 405, "method_not_allowed")
    assert response.headers["allow"] == "GET, POST"
