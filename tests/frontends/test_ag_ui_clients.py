"""AG-UI with the real `@ag-ui/client` HttpAgent (1.0.0 and 0.0.59) against `agent-service serve`.

The cases are in tests/js/ag-ui.test.mjs: a chat, a tool call, a state delta, a model error, a
long-running tool answered by a `tool` message, and a busy thread (409) whose run is cancelled
through the runs routes, and a client abort that cancels the run on the server. The client's
event verifier checks every stream.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.e2e.conftest import running_server
from tests.frontends.node import run_node_test

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(240)]


def test_ag_ui_http_agent(pg_db_url: str, tmp_path: Path) -> None:
    with running_server(pg_db_url, tmp_path) as server:
        output = run_node_test("ag-ui.test.mjs", {"AGENT_SERVICE_URL": server.base_url})
    # Seven cases per client version; a failing case already failed run_node_test.
    assert " pass 14\n" in output and " fail 0\n" in output, output
