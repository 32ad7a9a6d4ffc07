"""Memory across real server processes on one Postgres: replicas share it, restarts keep it."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import httpx
import pytest

from .conftest import ServerProcess, running_server, running_servers

BASE = "/apps/scripted/users"


async def chat(client: httpx.AsyncClient, uid: str, sid: str, text: str) -> None:
    response = await client.post(
        f"{BASE}/{uid}/sessions/{sid}:run",
        json={"newMessage": {"role": "user", "parts": [{"text": text}]}, "createSession": True},
        headers={"accept": "application/json"},
    )
    assert response.status_code == 200, response.text


async def remembered(client: httpx.AsyncClient, uid: str, query: str) -> list[str]:
    response = await client.get(f"{BASE}/{uid}/memory", params={"query": query})
    assert response.status_code == 200, response.text
    memories: list[dict[str, Any]] = response.json()["memories"]
    return sorted(" ".join(p["text"] for p in m["content"]["parts"]) for m in memories)


def client_of(server: ServerProcess) -> httpx.AsyncClient:
    return httpx.AsyncClient(base_url=server.base_url, timeout=20)


@pytest.mark.timeout(120)  # three server start-ups
async def test_two_processes_share_memory_and_a_restart_keeps_it(
    pg_db_url: str, tmp_path: Path
) -> None:
    with running_servers(pg_db_url, tmp_path, "a", "b") as (a, b):
        async with client_of(a) as first, client_of(b) as second:
            await chat(first, "ana", "s1", "chat my locker number is 42")
            await chat(first, "bob", "s1", "chat my locker number is 7")

            closes = await asyncio.gather(
                first.post(f"{BASE}/ana/sessions/s1:close"),
                second.post(f"{BASE}/ana/sessions/s1:close"),
            )
            assert [r.status_code for r in closes] == [204, 204]

            assert await remembered(second, "ana", "locker") == ["chat my locker number is 42"]
            assert await remembered(first, "bob", "locker") == []

    with running_server(pg_db_url, tmp_path, "restarted") as restarted:
        async with client_of(restarted) as client:
            assert await remembered(client, "ana", "locker number") == [
                "chat my locker number is 42"
            ]
            assert (await client.delete(f"{BASE}/ana/memory")).status_code == 204
            assert await remembered(client, "ana", "locker") == []


async def test_close_during_a_real_run_is_409(http: httpx.AsyncClient) -> None:
    await chat(http, "ana", "s1", "chat hello")
    url = f"{BASE}/ana/sessions/s1:run"
    body = {"newMessage": {"role": "user", "parts": [{"text": "slow"}]}}
    async with http.stream("POST", url, json=body) as stream:
        lines = stream.aiter_lines()
        async for line in lines:  # the tool call is stored: the run is now in its slow tool
            if line.startswith("data:") and "functionCall" in line:
                break
        response = await http.post(f"{BASE}/ana/sessions/s1:close")
        assert response.status_code == 409, response.text
        assert response.json()["code"] == "run_in_progress"
