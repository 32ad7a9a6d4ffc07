"""`/adk` behind API keys on a real server: the live route is bound to its `user_id` and
`app_name` query parameters (the WebSocket's only place for them), like `/live` to its path."""

from __future__ import annotations

import json

import httpx
import pytest

from tests.e2e.conftest import ServerProcess
from tests.e2e.test_auth_e2e import auth_server, close_code, stored_key

pytestmark = pytest.mark.e2e

__all__ = ["auth_server"]  # the fixture, shared with test_auth_e2e


async def test_run_live_is_bound_to_the_query_user_and_app(
    auth_server: ServerProcess, pg_db_url: str
) -> None:
    alice = await stored_key(pg_db_url, "alice")
    bob = await stored_key(pg_db_url, "bob")
    scripted_only = await stored_key(pg_db_url, "alice", apps=["scripted"])
    ws = auth_server.base_url.replace("http://", "ws://") + "/adk/run_live"
    query = "app_name=scripted&user_id=alice&session_id=nope&modalities=TEXT"

    code, frame = await close_code(f"{ws}?{query}")
    assert code == 4401 and frame is not None
    assert json.loads(frame)["error"]["code"] == "unauthenticated"
    assert (await close_code(f"{ws}?{query}&access_token={bob}"))[0] == 4403
    # Repeated parameters: the last value is the one the route uses, so the one checked.
    twice = "app_name=scripted&user_id=bob&user_id=alice&session_id=nope"
    assert (await close_code(f"{ws}?{twice}&access_token={bob}"))[0] == 4403
    other_app = query.replace("app_name=scripted", "app_name=burst")
    assert (await close_code(f"{ws}?{other_app}&access_token={scripted_only}"))[0] == 4403
    # The right caller reaches the route: the session does not exist (the reference's 1002).
    headers = {"Authorization": f"Bearer {alice}"}
    code, frame = await close_code(f"{ws}?{query}", additional_headers=headers)
    assert code == 1002 and frame is not None
    assert json.loads(frame)["errorCode"] == "session_not_found"

    async with httpx.AsyncClient(base_url=auth_server.base_url, timeout=20) as http:
        apps = await http.get("/adk/list-apps", headers={"X-API-Key": scripted_only})
        assert apps.json() == ["scripted"]
        body = {"app_name": "scripted", "user_id": "alice", "session_id": "nope"}
        refused = await http.post("/adk/run_sse", json=body, headers={"X-API-Key": bob})
        assert refused.status_code == 403
    assert alice.rsplit("_", 1)[1] not in auth_server.log()
