"""The committed OpenAPI document matches the code."""

from __future__ import annotations

from pathlib import Path

from app.server.cli_commands import openapi_document, render_openapi

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def test_committed_openapi_matches_the_app() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == render_openapi(), (
        "openapi/openapi.json is out of date: run `make openapi` and commit the result"
    )


_ADK = "/adk/apps/{app}/users/{uid}/sessions"
ADK_PATHS = {
    "/adk/list-apps": {"get"},
    "/adk/version": {"get"},
    "/adk/run": {"post"},
    "/adk/run_sse": {"post"},
    _ADK: {"get", "post"},
    _ADK + "/{sid}": {"get", "post", "patch", "delete"},
    _ADK + "/{sid}/artifacts": {"get", "post"},
    _ADK + "/{sid}/artifacts/{name}": {"get", "delete"},
    _ADK + "/{sid}/artifacts/{name}/versions": {"get"},
    _ADK + "/{sid}/artifacts/{name}/versions/metadata": {"get"},
    _ADK + "/{sid}/artifacts/{name}/versions/{version_id}": {"get"},
    _ADK + "/{sid}/artifacts/{name}/versions/{version_id}/metadata": {"get"},
    "/adk/config/telemetry": {"get"},
    "/adk/dev/apps/{app}/eval_sets": {"get"},
    "/adk/dev/apps/{app}/eval_results": {"get"},
    "/adk/dev/apps/{app}/debug/trace/session/{sid}": {"get"},
}
"""The ADK-compatible API (the reference api_server's routes, under `/adk`)."""


def test_openapi_documents_every_route_of_the_contract() -> None:
    paths = openapi_document()["paths"]
    base = "/apps/{app}/users/{uid}/sessions"
    expected = {
        "/healthz": {"get"},
        "/readyz": {"get"},
        "/apps": {"get"},
        "/apps/{app}": {"get"},
        base: {"get", "post"},
        base + "/{sid}": {"get", "patch", "delete"},
        base + "/{sid}/events": {"get"},
        base + "/{sid}:run": {"post"},
        base + "/{sid}/runs": {"get"},
        base + "/{sid}/runs/{invocation_id}": {"get"},
        base + "/{sid}/runs/{invocation_id}/events": {"get"},
        base + "/{sid}/runs/{invocation_id}:cancel": {"post"},
        base + "/{sid}/artifacts": {"get"},
        base + "/{sid}/artifacts/{name}": {"get", "delete"},
        base + "/{sid}/artifacts/{name}/versions": {"get"},
        base + "/{sid}:close": {"post"},
        base + "/{sid}/memory": {"delete"},
        "/apps/{app}/users/{uid}/memory": {"get", "delete"},
        "/apps/{app}/users/{uid}/usage": {"get"},
        "/apps/{app}/users/{uid}/ag-ui": {"post"},
        "/apps/{app}/users/{uid}/ai-sdk/chat": {"post"},
        "/apps/{app}/users/{uid}/ai-sdk/chat/{sid}/stream": {"get"},
        **ADK_PATHS,
    }
    assert {p: set(ops) for p, ops in paths.items()} == expected
    run = paths[base + "/{sid}:run"]["post"]
    assert set(run["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}


def test_every_error_response_is_documented_as_problem_json() -> None:
    document = openapi_document()
    for path, operations in document["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if int(status) < 400:
                    continue
                assert response["content"] == {
                    "application/problem+json": {
                        "schema": {"$ref": "#/components/schemas/ProblemOut"}
                    }
                }, f"{method} {path} {status}"
    assert "HTTPValidationError" not in document["components"]["schemas"]


def test_statuses_the_server_answers_outside_fastapi_are_documented() -> None:
    paths = openapi_document()["paths"]
    base = "/apps/{app}/users/{uid}/sessions"
    listing = paths[base]["get"]["responses"]
    assert {"400", "404", "422", "503"} <= set(listing)
    for path, method in ((base, "post"), (base + "/{sid}", "patch"), (base + "/{sid}:run", "post")):
        assert {"400", "413", "415", "422"} <= set(paths[path][method]["responses"]), path


def test_run_body_requires_new_message_unless_resuming_or_setting_state() -> None:
    run_request = openapi_document()["components"]["schemas"]["RunRequest"]
    required = [option["required"] for option in run_request["anyOf"]]
    assert required == [["newMessage"], ["invocationId"], ["stateDelta"]]


def test_the_sse_response_describes_one_event() -> None:
    run = openapi_document()["paths"]["/apps/{app}/users/{uid}/sessions/{sid}:run"]["post"]
    event = run["responses"]["200"]["content"]["text/event-stream"]["schema"]
    assert event["type"] == "object"
    assert event["properties"]["event"]["enum"] == ["message", "error", "end"]
    data = event["properties"]["data"]
    assert data["contentMediaType"] == "application/json"
    refs = [option["$ref"].rsplit("/", 1)[1] for option in data["contentSchema"]["oneOf"]]
    assert refs == ["Event", "ProblemOut", "RunEndOut"]
