"""Schemathesis against real uvicorn on Postgres: no 500s, every response as documented.

A bounded, deterministic run over every operation of our own `/openapi.json`: the coverage
phase (boundary values, wrong types, unsupported methods) and a short fuzzing phase, in
positive and negative modes. Path `app` is pinned to a loaded app so requests get past the
404 and reach the body, the session store and the agent; unknown apps are covered by
tests/server/test_bad_input.py. It takes ~10 s of CPU; on a machine with other suites
running, 30-45 s of wall time.
"""

from __future__ import annotations

import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest

from .conftest import ServerProcess

pytestmark = [pytest.mark.e2e, pytest.mark.postgres, pytest.mark.timeout(240)]

CHECKS = ",".join(
    [
        "not_a_server_error",
        "status_code_conformance",
        "content_type_conformance",
        "response_headers_conformance",
        "response_schema_conformance",
        "unsupported_method",  # a 405 with an Allow header
    ]
)
# Not `allow_header_conformance` (OPTIONS): `/sessions/x:run` is also the session `x:run`, so
# its Allow lists GET, PATCH and DELETE besides the POST of the `{sid}:run` template.

CONFIG = """\
# The ADK-compatible routes (first: the first matching entry applies): fuzzing only, as their
# bodies embed google-genai's Content and Event schemas (thousands of coverage cases); their
# bad input is tested in tests/server/test_adk_routes.py.
[[operations]]
include-path-regex = "^/adk/apps/[{]app[}]/users/[{]uid[}]/sessions([/][{]sid[}])?$"
parameters = { "path.app" = "scripted" }
phases.coverage.enabled = false

[[operations]]
include-path-regex = "^/adk/run"
phases.coverage.enabled = false

[[operations]]
include-path-regex = "^/adk/apps/.*/artifacts"
phases.coverage.enabled = false
[operations.parameters]
"path.app" = "scripted"
"path.uid" = "fuzz"
"path.sid" = "fuzz"
"path.name" = "note.txt"

# Sessions of a loaded app, so requests get past the 404 (not GET /apps/{app}: with its one
# parameter pinned, negative cases could not be generated).
[[operations]]
include-path-regex = "^/apps/[{]app[}]/users/[{]uid[}]/sessions([/][{]sid[}](/events)?)?$"
parameters = { "path.app" = "scripted" }

# The coverage phase derives ~1,500 cases from google-genai's Content schema alone; the
# run's bad Contents are tested field by field in tests/server/test_bad_input.py.
[[operations]]
include-path-regex = ":run$"
parameters = { "path.app" = "scripted" }
phases.coverage.enabled = false

# AG-UI runs on a loaded app, so generated RunAgentInputs reach the parser and the agent.
[[operations]]
include-path-regex = "/ag-ui$"
parameters = { "path.app" = "scripted" }

# A session with an artifact, so the artifact routes answer more than 404.
[[operations]]
include-path-regex = "/artifacts"
[operations.parameters]
"path.app" = "scripted"
"path.uid" = "fuzz"
"path.sid" = "fuzz"
"path.name" = "note.txt"
"""


def _operations(base_url: str) -> set[str]:
    document = httpx.get(base_url + "/openapi.json").json()
    return {f"{method.upper()} {path}" for path, ops in document["paths"].items() for method in ops}


def test_every_operation_conforms_to_the_openapi_document(
    server: ServerProcess, tmp_path: Path
) -> None:
    saved = httpx.post(
        server.base_url + "/apps/scripted/users/fuzz/sessions/fuzz:run",
        json={"newMessage": {"parts": [{"text": "save"}]}, "createSession": True},
        headers={"accept": "application/json"},
    )
    assert saved.status_code == 200, saved.text
    note = server.base_url + "/apps/scripted/users/fuzz/sessions/fuzz/artifacts/note.txt"
    assert httpx.get(note).status_code == 200
    config = tmp_path / "schemathesis.toml"
    config.write_text(CONFIG)
    junit = tmp_path / "junit.xml"
    command = [
        *(sys.executable, "-m", "schemathesis.cli"),
        *("--config-file", str(config), "run", server.base_url + "/openapi.json"),
        *("--checks", CHECKS, "--phases", "coverage,fuzzing", "--mode", "all"),
        *("--max-examples", "6", "--generation-deterministic", "--no-shrink"),
        *("--workers", "1", "--no-color", "--request-timeout", "10"),
        *("--report", "junit", "--report-junit-path", str(junit)),
    ]
    result = subprocess.run(
        command, cwd=tmp_path, capture_output=True, text=True, timeout=200, check=False
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]

    cases = ET.parse(junit).getroot().iter("testcase")
    outcomes = {case.get("name"): [child.tag for child in case] for case in cases}
    assert set(outcomes) == _operations(server.base_url), output[-3000:]
    assert {name: tags for name, tags in outcomes.items() if tags} == {}, output[-3000:]
    assert "500 Internal Server Error" not in server.log()
    # The pinned parameters reached the seeded session: its artifact was deleted by the run.
    assert httpx.get(note).status_code == 404
