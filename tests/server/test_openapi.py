"""The committed OpenAPI document matches the code."""

from __future__ import annotations

from pathlib import Path

from app.server.cli_commands import openapi_document, render_openapi

COMMITTED = Path(__file__).resolve().parents[2] / "openapi" / "openapi.json"


def test_committed_openapi_matches_the_app() -> None:
    assert COMMITTED.read_text(encoding="utf-8") == render_openapi(), (
        "openapi/openapi.json is out of date: run `make openapi` and commit the result"
    )


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
        base + "/{sid}/artifacts": {"get"},
        base + "/{sid}/artifacts/{name}": {"get", "delete"},
        base + "/{sid}/artifacts/{name}/versions": {"get"},
        base + "/{sid}:close": {"post"},
        base + "/{sid}/memory": {"delete"},
        "/apps/{app}/users/{uid}/memory": {"get", "delete"},
    }
    assert {p: set(ops) for p, ops in paths.items()} == expected
    run = paths[base + "/{sid}:run"]["post"]
    assert set(run["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
