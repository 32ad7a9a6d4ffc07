"""Run a `node --test` file from tests/js against a running server.

The Node packages are the real frontend client libraries, pinned in tests/js/package-lock.json
and installed by `make test` (`npm ci`). A missing tool is a failure that says what to install,
never a skip.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path

import pytest

JS_DIR = Path(__file__).resolve().parents[1] / "js"
NODE_TIMEOUT_SECONDS = 120.0


def node_binary() -> str:
    """Return the `node` executable, failing the test when Node or the packages are missing."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not installed: install Node.js 20+ (the protocol tests need it)")
    if not (JS_DIR / "node_modules").is_dir():
        pytest.fail(f"the client libraries are not installed: run `cd {JS_DIR} && npm ci`")
    return node


def run_node_test(test_file: str, env: Mapping[str, str]) -> str:
    """Run `node --test tests/js/<test_file>` with `env` added; fail with its output on error."""
    node = node_binary()
    result = subprocess.run(
        [node, "--test", "--test-reporter=spec", test_file],
        cwd=JS_DIR,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=NODE_TIMEOUT_SECONDS,
        check=False,
    )
    output = result.stdout + result.stderr
    if result.returncode != 0:
        pytest.fail(f"node --test {test_file} failed (exit {result.returncode}):\n{output}")
    return output
