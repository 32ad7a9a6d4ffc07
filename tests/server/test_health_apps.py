"""Probes and the apps listing."""

from __future__ import annotations

import gc

import httpx

from app.server.app import GC_THRESHOLDS

from .conftest import ClientFactory
from .helpers import assert_problem


async def test_healthz_answers_ok(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_readyz_is_ok_on_the_memory_store(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200


async def test_apps_lists_loaded_and_broken_apps_but_not_private_folders(
    client: httpx.AsyncClient,
) -> None:
    response = await client.get("/apps")
    assert response.status_code == 200
    apps = {app["name"]: app for app in response.json()["apps"]}
    assert set(apps) == {"broken", "burst", "handoff", "metered", "scripted"}
    assert apps["broken"]["available"] is False
    assert "this_module_does_not_exist" in apps["broken"]["error"]
    scripted = apps["scripted"]
    assert scripted["available"] is True
    assert scripted["rootAgent"]["name"] == "scripted"
    tools = {t["name"]: t["description"] for t in scripted["rootAgent"]["tools"]}
    assert tools["get_weather"] == "Return the weather for a city."
    assert set(tools) == {
        "get_weather",
        "save_note",
        "slow_tool",
        "pause_tool",
        "set_color",
        "ask_human",
    }
    assert scripted["rootAgent"]["subAgents"] == []


async def test_get_app_returns_one_app(client: httpx.AsyncClient) -> None:
    response = await client.get("/apps/scripted")
    assert response.status_code == 200
    assert response.json()["description"].startswith("Answers from a script")


async def test_get_unknown_app_is_404(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/apps/nope"), 404, "app_not_found")


async def test_unknown_route_and_method_are_problems(client: httpx.AsyncClient) -> None:
    assert_problem(await client.get("/nowhere"), 404, "not_found")
    assert_problem(await client.put("/healthz"), 405, "method_not_allowed")


async def test_cors_headers_follow_settings(make_client) -> None:  # type: ignore[no-untyped-def]
    async with make_client(cors_origins=["http://ui.example"]) as c:
        response = await c.options(
            "/apps",
            headers={
                "origin": "http://ui.example",
                "access-control-request-method": "GET",
            },
        )
        assert response.status_code == 200
        assert response.headers["access-control-allow-origin"] == "http://ui.example"
        other = await c.get("/apps", headers={"origin": "http://evil.example"})
        assert "access-control-allow-origin" not in other.headers


async def test_large_json_is_gzipped_but_runs_are_not(client: httpx.AsyncClient) -> None:
    base = "/apps/scripted/users/u1/sessions"
    await client.post(base, json={"sessionId": "g", "state": {"big": "x" * 5000}})
    listing = await client.get(base, headers={"accept-encoding": "gzip"})
    assert listing.headers["content-encoding"] == "gzip"
    assert listing.json()["sessions"][0]["state"]["big"] == "x" * 5000
    run = await client.post(
        f"{base}/g:run",
        json={"newMessage": {"parts": [{"text": "chat"}]}},
        headers={"accept-encoding": "gzip"},
    )
    assert run.status_code == 200
    assert "content-encoding" not in run.headers


async def test_gc_thresholds_are_raised_while_serving_and_restored_after(
    make_client: ClientFactory,
) -> None:
    before = gc.get_threshold()
    async with make_client() as client:
        assert gc.get_threshold() == GC_THRESHOLDS
        assert (await client.get("/healthz")).status_code == 200
    assert gc.get_threshold() == before
