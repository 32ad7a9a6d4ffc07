"""`agent-service devui fetch`: the command line and the real pip, on a local package index.

pip reads a folder of wheels (`--find-links`) written by the test, with its configuration
files and the network out of the way, so these tests never reach the internet; the browser
test (tests/frontends/test_dev_ui_browser.py) fetches the real wheel from PyPI.
"""

from __future__ import annotations

import os
import socket
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.cli import main
from app.server.dev_ui.bundle import PINNED_VERSION, DevUiFetchError, _unpack_bundle

BROWSER = "google/adk/cli/browser/"


def write_wheel(folder: Path, version: str = PINNED_VERSION, **extra: str) -> Path:
    """A minimal google-adk wheel: some package code and a browser bundle."""
    folder.mkdir(parents=True, exist_ok=True)
    wheel = folder / f"google_adk-{version}-py3-none-any.whl"
    info = f"google_adk-{version}.dist-info/"
    files = {
        "google/adk/__init__.py": "",
        "google/adk/cli/fast_api.py": "# not part of the bundle",
        BROWSER + "index.html": "<!doctype html><title>Agent Development Kit Dev UI</title>",
        BROWSER + "main-TEST.js": "console.log('dev ui')",
        BROWSER + "assets/audio-processor.js": "// worklet",
        info + "METADATA": f"Metadata-Version: 2.1\nName: google-adk\nVersion: {version}\n",
        info + "WHEEL": "Wheel-Version: 1.0\nRoot-Is-Purelib: true\nTag: py3-none-any\n",
        info + "RECORD": "",
        **extra,
    }
    with zipfile.ZipFile(wheel, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return wheel


@dataclass
class Result:
    """What one `agent-service devui fetch` printed and returned."""

    returncode: int
    stdout: str
    stderr: str


@pytest.fixture
def fetch(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> Callable[..., Result]:
    """Run the command line's `devui fetch` with pip limited to `tmp_path/wheels` (or `index`)."""

    def run(*args: str, index: str | None = None) -> Result:
        monkeypatch.setenv("PIP_CONFIG_FILE", os.devnull)  # no machine-wide index or find-links
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg-cache"))
        monkeypatch.setenv("PIP_FIND_LINKS", str(tmp_path / "wheels") if index is None else "")
        if index is None:
            monkeypatch.setenv("PIP_NO_INDEX", "1")
        else:
            monkeypatch.delenv("PIP_NO_INDEX", raising=False)
            monkeypatch.setenv("PIP_INDEX_URL", index)
        code = main(["devui", "fetch", *args])
        out, err = capsys.readouterr()
        return Result(code, out, err)

    return run


def test_fetch_unpacks_only_the_bundle_into_the_xdg_cache_then_reuses_it(
    tmp_path: Path, fetch: Callable[..., Result]
) -> None:
    wheel = write_wheel(tmp_path / "wheels")
    first = fetch()
    assert first.returncode == 0, first.stderr
    expected = tmp_path / "xdg-cache" / "agent-service" / "dev-ui" / PINNED_VERSION
    assert first.stdout.strip() == str(expected)
    assert "downloaded" in first.stderr
    files = sorted(p.relative_to(expected).as_posix() for p in expected.rglob("*") if p.is_file())
    assert files == ["assets/audio-processor.js", "index.html", "main-TEST.js"]
    assert [p.name for p in expected.parent.iterdir()] == [PINNED_VERSION]  # no leftovers

    wheel.unlink()  # a second run must not need the index
    second = fetch()
    assert second.returncode == 0, second.stderr
    assert second.stdout.strip() == str(expected)
    assert "already cached" in second.stderr


def test_cache_dir_and_version_options(tmp_path: Path, fetch: Callable[..., Result]) -> None:
    write_wheel(tmp_path / "wheels", version="2.12.1")
    result = fetch("--version", "2.12.1", "--cache-dir", str(tmp_path / "mine"))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == str(tmp_path / "mine" / "2.12.1")
    assert (tmp_path / "mine" / "2.12.1" / "index.html").is_file()


def test_unknown_version_is_a_message_and_exit_1(
    tmp_path: Path, fetch: Callable[..., Result]
) -> None:
    write_wheel(tmp_path / "wheels")
    result = fetch("--version", "9.9.9")
    assert result.returncode == 1
    assert "no google-adk==9.9.9 wheel" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""
    assert not (tmp_path / "xdg-cache" / "agent-service" / "dev-ui" / "9.9.9").exists()


def test_unreachable_index_is_a_message_and_exit_1(
    tmp_path: Path, fetch: Callable[..., Result]
) -> None:
    with socket.socket() as closed:  # a port nothing listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    result = fetch(index=f"http://127.0.0.1:{port}/simple")
    assert result.returncode == 1
    assert "could not reach the package index" in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("version", ["../2.13.0", "2.13.0 --index-url=x", "latest", ""])
def test_malformed_version_is_refused_before_pip(
    fetch: Callable[..., Result], version: str
) -> None:
    result = fetch("--version", version)
    assert result.returncode == 1
    assert "not a google-adk version number" in result.stderr
    assert "Traceback" not in result.stderr


def test_wheel_without_a_bundle_is_refused(tmp_path: Path) -> None:
    wheel = write_wheel(tmp_path / "wheels")
    stripped = tmp_path / "stripped" / wheel.name
    stripped.parent.mkdir()
    with zipfile.ZipFile(wheel) as source, zipfile.ZipFile(stripped, "w") as sink:
        for item in source.infolist():
            if not item.filename.startswith(BROWSER):
                sink.writestr(item, source.read(item))
    with pytest.raises(DevUiFetchError, match="no dev UI bundle"):
        _unpack_bundle(stripped, tmp_path / "out")


def test_unsafe_member_paths_are_refused(tmp_path: Path) -> None:
    wheel = write_wheel(tmp_path / "wheels", **{BROWSER + "../../../../evil.txt": "x"})
    with pytest.raises(DevUiFetchError, match="unsafe path"):
        _unpack_bundle(wheel, tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()
