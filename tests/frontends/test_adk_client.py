"""assistant-ui's ADK adapter (`@assistant-ui/react-google-adk`) against `agent-service serve`.

The Node side is tests/js/adk.test.mjs: `createAdkStream` on `/adk/run_sse` (a chat, token
streaming, a tool call, state deltas, a model error, a missing session) and the session
adapter on `/adk/apps/...` (create, list, load, artifacts, delete).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import running_server
from tests.frontends.node import run_node_test

pytestmark = pytest.mark.e2e


def test_assistant_ui_adk_adapter(pg_db_url: str, tmp_path: Path) -> None:
    with running_server(pg_db_url, tmp_path) as server:
        output = run_node_test("adk.test.mjs", {"ADK_URL": server.base_url + "/adk"})
    assert " pass 7\n" in output and " fail 0\n" in output, output  # every case ran
