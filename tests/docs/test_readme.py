"""Every README example runs as written: the Python snippets, and the curl calls against the
real server (`agent-service serve`), offline.

A snippet is run as a user would, as a script in an empty directory. Gemini calls go to our
fake Gemini (`GOOGLE_GEMINI_BASE_URL`), never to the internet. A snippet that cannot run
offline must say so on the line before its fence: `<!-- readme-test: skip (reason) -->`.
"""

from __future__ import annotations

import asyncio
import json
import re
import socket
import sys
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import uvicorn

from app.testing import FakeGemini, function_call
from tests.deploy.process import offline_env, serve

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
SNIPPET_TIMEOUT_SECONDS = 60
_FENCE = re.compile(r"^```(\w*)\n(.*?)^```\n", re.M | re.S)
_SKIP = re.compile(r"<!-- readme-test: skip \((.+?)\) -->\n$")


@dataclass(frozen=True)
class Block:
    """One fenced block of the README."""

    language: str
    code: str
    heading: str
    line: int
    skip: str | None

    @property
    def id(self) -> str:
        return f"{self.heading} (line {self.line})"


def _blocks() -> list[Block]:
    text = README.read_text()
    blocks = []
    for match in _FENCE.finditer(text):
        before = text[: match.start()]
        headings = re.findall(r"^#+ (.+)$", before, re.M)
        skip = _SKIP.search(before)
        blocks.append(
            Block(
                match.group(1),
                match.group(2),
                headings[-1] if headings else "",
                before.count("\n") + 1,
                skip.group(1) if skip else None,
            )
        )
    return blocks


PYTHON_BLOCKS = [b for b in _blocks() if b.language == "python"]

# What the model says and what the snippet prints, per section; a snippet elsewhere must
# still run to completion.
FAKE_GEMINI_SCRIPTS: dict[str, list[Any]] = {
    "Use the runtime from Python": [
        function_call("get_weather", {"city": "Paris"}),
        "Sunny in Paris, 21 °C.",
    ],
}
EXPECTED_OUTPUT = {
    "Use the runtime from Python": (
        "assistant calls get_weather({'city': 'Paris'})\nassistant: Sunny in Paris, 21 °C.\n"
    ),
    "Sessions in a database": "['hi', 'Hello!']\n",
    "Testing your agents": "",
}


def test_the_readme_has_the_snippets_this_test_expects() -> None:
    headings = {block.heading for block in PYTHON_BLOCKS}
    assert set(EXPECTED_OUTPUT) <= headings
    assert all(block.skip is None for block in PYTHON_BLOCKS)  # none needs the internet today


@pytest.mark.parametrize("block", PYTHON_BLOCKS, ids=lambda b: b.id)
async def test_python_snippet_runs_as_written(block: Block, tmp_path: Path) -> None:
    if block.skip:
        pytest.skip(block.skip)
    script = tmp_path / "snippet.py"
    script.write_text(block.code)
    fake = FakeGemini(FAKE_GEMINI_SCRIPTS.get(block.heading, []))
    async with _served_over_http(fake) as base_url:
        env = offline_env({"GOOGLE_API_KEY": "readme-test-key", "GOOGLE_GEMINI_BASE_URL": base_url})
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            cwd=tmp_path,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(process.communicate(), SNIPPET_TIMEOUT_SECONDS)
    stdout, stderr = out.decode(), err.decode()
    assert process.returncode == 0, f"README line {block.line} failed:\n{stderr}"
    if block.heading in EXPECTED_OUTPUT:
        assert stdout == EXPECTED_OUTPUT[block.heading]
    assert fake.remaining == 0  # every scripted answer was asked for
    if block.heading == "Use the runtime from Python":
        tool_turn = fake.requests[1]["contents"][-1]["parts"][0]["functionResponse"]
        assert tool_turn["response"] == {"city": "Paris", "forecast": "sunny", "celsius": 21}


def test_the_curl_examples_work_against_the_server(tmp_path: Path) -> None:
    """The HTTP section's curl calls, as written, against `agent-service serve`."""
    (calls,) = _curl_blocks("HTTP service")
    documented = _next_block(calls)
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
    created = json.loads(outputs[0])
    assert created["id"] == "s1" and created["appName"] == "assistant"
    frames = _sse_frames(outputs[1])
    assert _shape(frames) == _shape(_sse_frames(documented.code))
    stored = [json.loads(f["data"]) for f in frames if "id" in f]
    assert stored[0]["content"]["parts"][0]["functionCall"]["name"] == "get_weather"
    response = stored[1]["content"]["parts"][0]["functionResponse"]["response"]
    assert response["city"] == "Paris" and response["forecast"] == "sunny"
    assert [f["id"] for f in frames if "id" in f] == [str(e["seq"]) for e in stored]
    end = json.loads(frames[-1]["data"])
    assert end["reason"] == "completed" and end["lastSeq"] == stored[-1]["seq"]


def test_the_memory_curl_examples_work_against_the_server(tmp_path: Path) -> None:
    """The Memory section's curl calls (run, close, search), against `agent-service serve`."""
    (calls,) = _curl_blocks("Memory")
    documented = json.loads(_next_block(calls).code)
    commands = re.sub(r"\\\n\s*", " ", calls.code).strip().splitlines()
    assert [c.split()[0] for c in commands] == ["curl", "curl", "curl"]
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
    assert json.loads(outputs[0])["events"]  # the turn ran
    assert outputs[1] == ""  # 204
    (found,) = json.loads(outputs[2])["memories"]
    (expected,) = documented["memories"]
    assert found.keys() == expected.keys()
    assert found["content"] == expected["content"] and found["author"] == expected["author"]


def test_the_adk_curl_examples_work_against_the_server(tmp_path: Path) -> None:
    """The ADK-compatible API curl calls (create, run_sse, list) against `agent-service serve`."""
    (calls,) = _curl_blocks("ADK-compatible API")
    documented = _sse_frames(_next_block(calls).code)
    commands = re.sub(r"\\\n\s*", " ", calls.code).strip().splitlines()
    assert [c.split()[0] for c in commands] == ["curl", "curl", "curl"]
    env = offline_env(
        {
            "AGENT_SERVICE_AGENTS_DIR": str(ROOT / "agents"),
            "AGENT_SERVICE_DATABASE_URL": "memory://",
        }
    )
    server_command = [str(Path(sys.executable).parent / "agent-service"), "serve"]
    with serve(server_command, env=env, cwd=tmp_path) as server:
        address = server.base_url.removeprefix("http://")
        outputs = [
            _run_shell(command.replace("localhost:8000", address), tmp_path) for command in commands
        ]
    created = json.loads(outputs[0])
    assert created["id"] == "adk1" and created["events"] == []
    assert outputs[1].endswith("\n\n") and "event:" not in outputs[1] and "id:" not in outputs[1]
    frames = _sse_frames(outputs[1])
    assert [list(f) for f in frames] == [list(f) for f in documented] == [["data"]] * 3
    events = [json.loads(f["data"]) for f in frames]
    assert events[0]["content"]["parts"][0]["functionCall"]["name"] == "get_weather"
    assert events[1]["content"]["parts"][0]["functionResponse"]["response"]["forecast"] == "sunny"
    assert events[2]["content"]["parts"][0]["text"].startswith("Here is what get_weather found")
    (listed,) = json.loads(outputs[2])
    assert listed["id"] == "adk1" and listed["events"] == []


@pytest.mark.timeout(180)  # a server start and a Node process on a busy machine
def test_the_ag_ui_examples_work_against_the_server(tmp_path: Path) -> None:
    """The AG-UI section's curl call and HttpAgent snippet, against `agent-service serve`."""
    from ag_ui.core import Event as AgUiEvent
    from pydantic import TypeAdapter

    from tests.frontends.node import JS_DIR, node_binary

    (call,) = _curl_blocks("AG-UI")
    documented = _sse_frames(_next_block(call).code)
    (snippet,) = [b for b in _blocks() if b.language == "js" and b.heading == "AG-UI"]
    command = re.sub(r"\\\n\s*", " ", call.code).strip()
    env = offline_env(
        {
            "AGENT_SERVICE_AGENTS_DIR": str(ROOT / "agents"),
            "AGENT_SERVICE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'readme.db'}",
            "AGENT_SERVICE_MIGRATE_ON_START": "true",
        }
    )
    script = JS_DIR / f"readme-ag-ui-{tmp_path.name}.mjs"  # beside the pinned node_modules
    server_command = [str(Path(sys.executable).parent / "agent-service"), "serve"]
    try:
        with serve(server_command, env=env, cwd=tmp_path) as server:
            address = server.base_url.removeprefix("http://")
            output = _run_shell(command.replace("localhost:8000", address), tmp_path)
            script.write_text(snippet.code.replace("localhost:8000", address))
            printed = _run_shell(f"{node_binary()} {script}", tmp_path)
    finally:
        script.unlink(missing_ok=True)
    frames = _sse_frames(output)
    adapter = TypeAdapter(AgUiEvent)
    events = [adapter.validate_json(f["data"]).type.value for f in frames]
    shown = [json.loads(f["data"].replace("…", ""))["type"] for f in documented]

    def collapsed(types: list[str]) -> list[str]:
        return [t for i, t in enumerate(types) if i == 0 or types[i - 1] != t]

    assert collapsed(events) == collapsed(shown)
    assert printed.endswith("\nuser assistant tool assistant\n"), printed
    assert "Here is what get_weather found" in printed


def _curl_blocks(heading: str) -> list[Block]:
    return [
        b
        for b in _blocks()
        if b.language == "bash" and b.code.startswith("curl") and b.heading == heading
    ]


LIVE_AGENT = """
from app.agents import Agent
from app.testing import ScriptedModel

root_agent = Agent(name="assistant", model=ScriptedModel(["Hello from the live test."]))
"""


async def test_the_live_client_talks_to_the_server(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The Live section's client, called against `agent-service serve` (a scripted model)."""
    (block,) = [b for b in PYTHON_BLOCKS if b.heading == "Live (bidirectional audio)"]
    (tmp_path / "agents" / "assistant").mkdir(parents=True)
    (tmp_path / "agents" / "assistant" / "agent.py").write_text(LIVE_AGENT)
    env = offline_env(
        {
            "AGENT_SERVICE_AGENTS_DIR": str(tmp_path / "agents"),
            "AGENT_SERVICE_DATABASE_URL": "memory://",
        }
    )
    namespace: dict[str, Any] = {"__name__": "readme_live"}
    exec(compile(block.code, f"README.md:{block.line}", "exec"), namespace)
    server_command = [str(Path(sys.executable).parent / "agent-service"), "serve"]
    with serve(server_command, env=env, cwd=tmp_path) as server:
        namespace["SERVER"] = server.base_url.replace("http://", "ws://")
        speech = await asyncio.wait_for(namespace["talk"](bytes(6400)), 30)  # 0.2 s of silence
    assert len(speech) > 0 and len(speech) % 2 == 0  # PCM16 samples
    assert capsys.readouterr().out == "model said: Hello from the live test.\n"


def _next_block(block: Block) -> Block:
    blocks = _blocks()
    return blocks[blocks.index(block) + 1]


def _run_shell(command: str, cwd: Path) -> str:
    import subprocess

    result = subprocess.run(
        ["bash", "-c", command], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, f"{command}\n{result.stderr}"
    return result.stdout


def _sse_frames(text: str) -> list[dict[str, str]]:
    """Parse SSE text into frames ({field: value}); comments and empty frames are dropped."""
    frames = []
    for chunk in re.split(r"\r?\n\r?\n", text):
        frame = {}
        for line in chunk.splitlines():
            if line and not line.startswith(":"):
                field, _, value = line.partition(":")
                frame[field] = value.removeprefix(" ")
        if frame:
            frames.append(frame)
    return frames


def _shape(frames: list[dict[str, str]]) -> list[str]:
    """Return the non-partial frames as `id` or `event: name` markers."""
    shape = []
    for frame in frames:
        if "event" in frame:
            shape.append(f"event: {frame['event']}")
        elif "id" in frame:
            shape.append("stored")
    return shape


@asynccontextmanager
async def _served_over_http(fake: FakeGemini) -> AsyncIterator[str]:
    """Serve `fake` on plain HTTP on a loopback port (REST only) until exit."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen()  # connections queue from now on: nothing to wait for
    server = _QuietServer(uvicorn.Config(fake, lifespan="off", log_level="warning"))
    serving = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await serving
        sock.close()


class _QuietServer(uvicorn.Server):
    """uvicorn.Server that leaves the test process's signal handlers alone."""

    @contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def test_the_quota_curl_examples_work_against_the_server(tmp_path: Path) -> None:
    """The Quotas section's calls (a run's RateLimit headers, then /usage), as written."""
    (calls,) = _curl_blocks("Quotas")
    documented = json.loads(_next_block(calls).code)
    commands = re.sub(r"\\\n\s*", " ", calls.code).strip().splitlines()
    assert [c.split()[0] for c in commands] == ["curl", "curl"]
    env = offline_env(
        {
            "AGENT_SERVICE_AGENTS_DIR": str(ROOT / "agents"),
            "AGENT_SERVICE_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'readme.db'}",
            "AGENT_SERVICE_MIGRATE_ON_START": "true",
            "AGENT_SERVICE_RUN_RATE": "60/minute",
            "AGENT_SERVICE_MAX_ACTIVE_RUNS_PER_USER": "4",
            "AGENT_SERVICE_TOKEN_BUDGET": "200000/day",
        }
    )
    server_command = [str(Path(sys.executable).parent / "agent-service"), "serve"]
    with serve(server_command, env=env, cwd=tmp_path) as server:
        address = server.base_url.removeprefix("http://")
        outputs = [
            _run_shell(command.replace("localhost:8000", address), tmp_path) for command in commands
        ]
    headers = dict(line.lower().split(": ", 1) for line in outputs[0].strip().splitlines())
    assert headers["ratelimit-limit"] == "60" and headers["ratelimit-remaining"] == "59"
    assert 1 <= int(headers["ratelimit-reset"]) <= 60
    usage = json.loads(outputs[1])
    assert usage.keys() == documented.keys()
    for name, counters in documented.items():
        assert usage[name].keys() == counters.keys()
    assert usage["runs"]["used"] == 1 and usage["activeRuns"] == {"limit": 4, "used": 0}
