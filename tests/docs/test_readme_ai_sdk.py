"""The README's Vercel AI SDK curl calls, as written, against `agent-service serve`.

(The `useChat` snippet is JavaScript, not run here; its transport options are the ones
tests/js/ai-sdk.test.mjs drives.)
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import pytest

from tests.deploy.process import offline_env, serve
from tests.docs.test_readme import ROOT, _curl_blocks, _next_block, _run_shell

pytestmark = pytest.mark.e2e


def _types(text: str) -> list[str]:
    """The chunk types of a UI message stream, consecutive repeats collapsed (`[DONE]` as is)."""
    found: list[str] = []
    for line in text.splitlines():
        if not line.startswith("data: "):
            continue
        payload = line.removeprefix("data: ")
        kind = payload if payload == "[DONE]" else re.search(r'"type":"([^"]+)"', payload)
        name = kind if isinstance(kind, str) else kind.group(1) if kind else payload
        if not found or found[-1] != name:
            found.append(name)
    return found


def test_the_ai_sdk_curl_examples_work_against_the_server(tmp_path: Path) -> None:
    (calls,) = _curl_blocks("Vercel AI SDK")
    documented = _next_block(calls).code
    commands = re.sub(r"\\\n\s*", " ", calls.code).strip().splitlines()
    assert [c.split()[0] for c in commands] == ["curl", "curl"]
    env = offline_env(
        {
            "AGENT_SERVICE_AGENTS_DIR": str(ROOT / "agents"),
            "AGENT_SERVICE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'readme.db'}",
            "AGENT_SERVICE_MIGRATE_ON_START": "true",
        }
    )
    server_command = [str(Path(sys.executable).parent / "agent-service"), "serve"]
    with serve(server_command, env=env, cwd=tmp_path) as server:
        address = server.base_url.removeprefix("http://")
        outputs = [
            _run_shell(command.replace("localhost:8000", address), tmp_path) for command in commands
        ]
    assert _types(outputs[0]) == _types(documented)
    chunks = [
        json.loads(line.removeprefix("data: "))
        for line in outputs[0].splitlines()
        if line.startswith("data: {")
    ]
    call = next(c for c in chunks if c["type"] == "tool-input-available")
    assert call["toolName"] == "get_weather" and call["input"] == {"city": "Paris"}
    assert outputs[0].endswith("data: [DONE]\n\n")
    assert outputs[1].strip() == documented.strip().splitlines()[-1] == "204"
