"""Quotas in process (`memory://` and SQLite count in this process): 429s, headers, /usage."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.server.quotas import MemoryQuotaStore, Quotas, parse_window_limit
from app.server.quotas.limiter import RateLimitedError, TokenBudgetExceededError
from app.server.quotas.store import Limits
from app.sessions import migration
from tests.server.conftest import ClientFactory
from tests.server.helpers import assert_problem, parse_sse, services_of

RUN = "/apps/{app}/users/{uid}/sessions/{sid}:run"


def run_url(sid: str, *, app: str = "scripted", uid: str = "u1") -> str:
    return RUN.format(app=app, uid=uid, sid=sid)


def body(text: str) -> dict[str, Any]:
    return {"newMessage": {"role": "user", "parts": [{"text": text}]}, "createSession": True}


async def run(client: httpx.AsyncClient, sid: str, text: str = "chat", **kw: Any) -> httpx.Response:
    return await client.post(run_url(sid, **kw), json=body(text))


def assert_quota_problem(response: httpx.Response, code: str, limit: int) -> None:
    assert_problem(response, 429, code)
    assert int(response.headers["retry-after"]) >= 1
    assert response.headers["ratelimit-limit"] == str(limit)
    assert response.headers["ratelimit-remaining"] == "0"
    assert int(response.headers["ratelimit-reset"]) >= 1


async def test_run_rate_refuses_past_the_limit_with_headers(make_client: ClientFactory) -> None:
    async with make_client(run_rate="2/minute") as client:
        first = await run(client, "s1")
        assert first.status_code == 200
        assert first.headers["ratelimit-limit"] == "2"
        assert first.headers["ratelimit-remaining"] == "1"
        assert (await run(client, "s2")).headers["ratelimit-remaining"] == "0"
        refused = await run(client, "s3")
        assert_quota_problem(refused, "rate_limited", 2)
        # Nothing stored: the refused run did not even create its session.
        assert (await client.get("/apps/scripted/users/u1/sessions/s3")).status_code == 404
        # Another user has their own window.
        assert (await run(client, "s1", uid="u2")).status_code == 200
        usage = (await client.get("/apps/scripted/users/u1/usage")).json()
        assert usage["runs"]["used"] == 2 and usage["runs"]["remaining"] == 0
        assert usage["runs"]["window"] == "minute"
        assert usage["activeRuns"] is None and usage["tokens"] is None


async def test_token_budget_counts_usage_metadata(make_client: ClientFactory) -> None:
    async with make_client(token_budget="250/day") as client:
        done = await run(client, "s1", "tool 100", app="metered")  # two responses: 200 tokens
        assert done.status_code == 200
        assert parse_sse(done.text)[-1]["event"] == "end"
        usage = (await client.get("/apps/metered/users/u1/usage")).json()
        assert usage["tokens"]["used"] == 200 and usage["tokens"]["remaining"] == 50
        # Under the budget at its start: runs, even past it.
        assert (await run(client, "s1", "chat 100", app="metered")).status_code == 200
        refused = await run(client, "s1", "chat 1", app="metered")
        assert_quota_problem(refused, "token_budget_exceeded", 250)
        events = (await client.get("/apps/metered/users/u1/sessions/s1")).json()["events"]
        assert len([e for e in events if e["author"] == "user"]) == 2  # not the refused one


async def test_max_active_runs_frees_the_slot_however_the_run_ends(
    make_client: ClientFactory,
) -> None:
    async with make_client(max_active_runs_per_user=1) as client:
        for text in ("chat", "boom", "raise", "crash"):  # completed, then in-band errors
            response = await run(client, "s1", text)
            assert response.status_code == 200, response.text
        services = services_of(client)
        assert services.quotas is not None
        assert (await services.quotas.usage("u1"))["active_runs"] == {"limit": 1, "used": 0}
        # A run holding the slot (slow: a 30 s tool) makes the next one wait for 429.
        slow = asyncio.create_task(run(client, "s2", "slow"))
        await wait_for_active(client, "u1", 1)
        refused = await run(client, "s3")
        assert_quota_problem(refused, "rate_limited", 1)
        # Cancelling the slow run frees the slot.
        runs = services.runs
        listed = await runs.list_runs(("scripted", "u1", "s2"), status=None, limit=5, before=None)
        await runs.cancel(("scripted", "u1", "s2"), listed[0].invocation_id)
        await slow
        usage = (await client.get("/apps/scripted/users/u1/usage")).json()
        assert usage["activeRuns"] == {"limit": 1, "used": 0}
        assert (await run(client, "s3")).status_code == 200


async def wait_for_active(client: httpx.AsyncClient, uid: str, count: int) -> None:
    async with asyncio.timeout(10):
        while True:
            usage = (await client.get(f"/apps/scripted/users/{uid}/usage")).json()
            if usage["activeRuns"]["used"] == count:
                return
            await asyncio.sleep(0.01)  # polled: the route offers no notification


async def test_usage_without_quotas_is_all_null(client: httpx.AsyncClient) -> None:
    usage = await client.get("/apps/scripted/users/u1/usage")
    assert usage.json() == {"runs": None, "activeRuns": None, "tokens": None}
    assert_problem(await client.get("/apps/nope/users/u1/usage"), 404, "app_not_found")


async def test_sqlite_counts_in_process(make_client: ClientFactory, tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'q.db'}"
    await migration.upgrade(url)
    async with make_client(database_url=url, run_rate="1/hour") as client:
        services = services_of(client)
        assert services.quotas is not None
        assert isinstance(services.quotas.store, MemoryQuotaStore)
        assert (await run(client, "s1")).status_code == 200
        refused = await run(client, "s1")
        assert_quota_problem(refused, "rate_limited", 1)
        assert int(refused.headers["retry-after"]) <= 3600


async def test_rate_refusal_gives_back_the_active_slot() -> None:
    quotas = Quotas(MemoryQuotaStore(), run_rate=parse_window_limit("1/day"), max_active_runs=5)
    first = quotas.for_run("u")
    await first.admit()
    with pytest.raises(RateLimitedError):
        await quotas.for_run("u").admit()
    assert (await quotas.usage("u"))["active_runs"]["used"] == 1
    await first.end()
    await first.end()  # once only
    assert (await quotas.usage("u"))["active_runs"]["used"] == 0


async def test_window_starts_over() -> None:
    store = MemoryQuotaStore()
    limits = Limits(runs_window=60.0, run_limit=1)
    assert (await store.admit("u", limits)).runs == 1
    assert (await store.admit("u", limits)).runs is None
    assert (await store.admit("u", Limits(runs_window=120.0, run_limit=1))).runs == 1
    await store.finish("u", release_active=False, tokens_window=0.0, tokens=5)
    assert (await store.counters("u", None, 0.0)).tokens == 5
    assert (await store.counters("u", None, 86400.0)).tokens == 0


async def test_budget_check_raises_past_the_budget() -> None:
    quotas = Quotas(MemoryQuotaStore(), token_budget=parse_window_limit("10/minute"))
    quota = quotas.for_run("u")
    await quota.admit()
    quota.tokens = 10
    with pytest.raises(TokenBudgetExceededError):
        quota.check_budget()


async def test_every_protocol_over_the_run_machinery_is_limited(
    make_client: ClientFactory,
) -> None:
    """AG-UI and the AI SDK chat share `:run`'s machinery, and so its quotas."""
    from tests.server.test_ag_ui import run_input, user
    from tests.server.test_ai_sdk_routes import body as chat_body
    from tests.server.test_ai_sdk_routes import user as chat_user

    async with make_client(run_rate="2/hour") as client:
        ag_ui = await client.post(
            "/apps/scripted/users/u1/ag-ui", json=run_input("t1", user("m1", "chat"))
        )
        assert ag_ui.status_code == 200 and ag_ui.headers["ratelimit-remaining"] == "1"
        chat = "/apps/scripted/users/u1/ai-sdk/chat"
        first = await client.post(chat, json=chat_body("c1", chat_user("chat")))
        assert first.status_code == 200 and first.headers["ratelimit-remaining"] == "0"
        assert_quota_problem(
            await client.post(chat, json=chat_body("c2", chat_user("chat"))), "rate_limited", 2
        )
        refused = await client.post(
            "/apps/scripted/users/u1/ag-ui", json=run_input("t2", user("m1", "chat"))
        )
        assert_quota_problem(refused, "rate_limited", 2)
        for sid in ("c2", "t2"):  # refused before anything was stored
            assert (await client.get(f"/apps/scripted/users/u1/sessions/{sid}")).status_code == 404
