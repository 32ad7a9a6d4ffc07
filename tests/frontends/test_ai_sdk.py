"""The Vercel AI SDK's own client (`ai` 6: `DefaultChatTransport` + `readUIMessageStream`, the
code path of `useChat`) against a real `agent-service serve` on Postgres: tests/js/ai-sdk.test.mjs.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests.e2e.conftest import running_server
from tests.frontends.node import run_node_test

# A server start-up and ten client runs (one waits for a 1.5 s tool) on a busy machine.
pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(180)]


def test_the_ai_sdk_client_chats_calls_tools_reports_errors_and_resumes(
    pg_db_url: str, tmp_path: Path
) -> None:
    with running_server(pg_db_url, tmp_path) as server:
        output = run_node_test("ai-sdk.test.mjs", {"AGENT_SERVICE_URL": server.base_url})
    # node exits non-zero on a failure; this also catches tests that silently did not run.
    assert re.search(r"\bpass 10\b", output) and re.search(r"\bfail 0\b", output), output
