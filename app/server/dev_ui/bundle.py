"""The ADK dev UI's browser bundle: where it is cached, and how `devui fetch` gets it.

We do not ship the bundle (it is built from third-party code whose notices it does not
carry). `fetch_bundle()` downloads the reference package's wheel with pip, the current
interpreter's, and unpacks only `google/adk/cli/browser/` into
`<cache root>/<version>/`. The cache root is `$XDG_CACHE_HOME/agent-service/dev-ui`
(default `~/.cache/agent-service/dev-ui`).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path, PurePosixPath

from app.errors import AgentServiceError, ConfigError

PACKAGE = "google-adk"
PINNED_VERSION = "2.13.0"
"""The google-adk release whose dev UI the `/adk` routes were checked against."""

BUNDLE_PREFIX = "google/adk/cli/browser/"
"""Where the wheel keeps the dev UI's built files."""

DIR_VARIABLE = "AGENT_SERVICE_DEV_UI_DIR"
FLAG_VARIABLE = "AGENT_SERVICE_DEV_UI"

PIP_TIMEOUT_SECONDS = 300.0
_VERSION = re.compile(r"^[0-9]+(?:\.[0-9]+)*(?:(?:a|b|rc|\.post|\.dev)[0-9]+)*$")
_PIP_ERROR = re.compile(r"^ERROR: (.*)$", re.MULTILINE)
_UNREACHABLE = (  # what pip prints when the index cannot be reached, and the part to quote
    re.compile(r"Failed to resolve '([^']+)'"),
    re.compile(r"Failed to establish a new connection: ([^\"')]+)"),
    re.compile(r"\b(ProxyError|SSLError|ConnectTimeoutError|ReadTimeoutError)\b"),
)


class DevUiFetchError(AgentServiceError):
    """The bundle could not be downloaded or unpacked; the message says why."""


def default_cache_root() -> Path:
    """`$XDG_CACHE_HOME/agent-service/dev-ui`, or `~/.cache/agent-service/dev-ui`."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "agent-service" / "dev-ui"


def bundle_dir(version: str = PINNED_VERSION, cache_root: Path | None = None) -> Path:
    """The directory the bundle of `version` is (or would be) unpacked into."""
    check_version(version)
    return (cache_root or default_cache_root()) / version


def is_bundle(directory: Path) -> bool:
    """Return whether `directory` holds a dev UI bundle (an `index.html`)."""
    return (directory / "index.html").is_file()


def check_version(version: str) -> None:
    """Refuse anything that is not a plain release number (it becomes a path and a pip arg).

    Raises:
        DevUiFetchError: the version is malformed.
    """
    if not _VERSION.match(version):
        example = PINNED_VERSION
        raise DevUiFetchError(f"not a {PACKAGE} version number: {version!r} (e.g. {example})")


def dev_ui_directory(directory: Path | None, enabled: bool) -> Path | None:
    """The bundle folder to serve (None: the dev UI is off), checked at start-up.

    Raises:
        ConfigError: naming the variable, when the folder is missing or has no index.html.
    """
    if directory is not None:
        if not is_bundle(directory):
            problem = "does not exist" if not directory.exists() else "has no index.html"
            raise ConfigError(
                f"invalid settings: {DIR_VARIABLE} ({directory} {problem}; "
                "`agent-service devui fetch` prints a folder that works)"
            )
        return directory
    if not enabled:
        return None
    cached = bundle_dir(PINNED_VERSION)
    if not is_bundle(cached):
        raise ConfigError(
            f"invalid settings: {FLAG_VARIABLE}=true but the dev UI is not in the cache "
            f"({cached}); run `agent-service devui fetch` first"
        )
    return cached


def fetch_bundle(
    version: str = PINNED_VERSION, cache_root: Path | None = None
) -> tuple[Path, bool]:
    """Make sure the bundle of `version` is cached; return its folder and whether we fetched it.

    Raises:
        DevUiFetchError: pip failed (no network, unknown version), or the wheel has no bundle.
    """
    target = bundle_dir(version, cache_root)
    if is_bundle(target):
        return target, False
    target.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="download-", dir=target.parent) as scratch:
        wheel = _download_wheel(version, Path(scratch))
        staging = Path(scratch) / "bundle"
        _unpack_bundle(wheel, staging)
        if target.exists():  # a half-finished earlier attempt (no index.html)
            shutil.rmtree(target)
        try:
            staging.rename(target)  # atomic: a reader sees no bundle or a whole one
        except OSError:
            if not is_bundle(target):  # not a concurrent fetch that won the race
                raise
    return target, True


def _download_wheel(version: str, into: Path) -> Path:
    command = [
        sys.executable,
        "-m",
        "pip",
        "download",
        "--no-deps",
        "--only-binary=:all:",
        "--disable-pip-version-check",
        "--no-input",
        "--retries",
        "1",
        "--dest",
        str(into),
        f"{PACKAGE}=={version}",
    ]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=PIP_TIMEOUT_SECONDS, check=False
        )
    except subprocess.TimeoutExpired as exc:
        raise DevUiFetchError(
            f"pip did not download {PACKAGE}=={version} within {PIP_TIMEOUT_SECONDS:.0f} s"
        ) from exc
    if done.returncode != 0:
        raise DevUiFetchError(_pip_failure(version, done.stdout + done.stderr))
    wheels = sorted(into.glob("*.whl"))
    if not wheels:
        raise DevUiFetchError(f"pip reported success but left no wheel of {PACKAGE}=={version}")
    return wheels[0]


def _pip_failure(version: str, output: str) -> str:
    """Say why pip failed: no pip, no network, no such version, or pip's own last error."""
    if "No module named pip" in output:
        return f"pip is not installed for {sys.executable}; it is needed to download the dev UI"
    for pattern in _UNREACHABLE:
        unreachable = pattern.search(output)
        if unreachable:
            return (
                f"could not reach the package index to download {PACKAGE}=={version} "
                f"({unreachable.group(1).strip()}); this needs network access to PyPI "
                "or to the index pip is configured with"
            )
    if "No matching distribution" in output:
        return (
            f"the package index has no {PACKAGE}=={version} wheel (is it a released version? "
            f"the pinned one is {PINNED_VERSION})"
        )
    errors = [line.strip() for line in _PIP_ERROR.findall(output) if line.strip()]
    lines = output.strip().splitlines()
    reason = "; ".join(errors[-2:]) if errors else (lines[-1] if lines else "no output")
    return f"could not download {PACKAGE}=={version} with pip: {reason}"


def _unpack_bundle(wheel: Path, into: Path) -> None:
    """Extract the wheel's `google/adk/cli/browser/` files (only those) under `into`."""
    try:
        archive = zipfile.ZipFile(wheel)
    except zipfile.BadZipFile as exc:
        raise DevUiFetchError(f"{wheel.name} is not a readable wheel: {exc}") from exc
    with archive:
        count = 0
        for member in archive.infolist():
            if member.is_dir() or not member.filename.startswith(BUNDLE_PREFIX):
                continue
            relative = PurePosixPath(member.filename[len(BUNDLE_PREFIX) :])
            if relative.is_absolute() or ".." in relative.parts or not relative.parts:
                raise DevUiFetchError(f"{wheel.name} holds an unsafe path: {member.filename!r}")
            destination = into.joinpath(*relative.parts)
            destination.parent.mkdir(parents=True, exist_ok=True)
            with archive.open(member) as source, destination.open("wb") as sink:
                shutil.copyfileobj(source, sink)
            count += 1
    if not is_bundle(into):
        raise DevUiFetchError(
            f"{wheel.name} has no dev UI bundle ({BUNDLE_PREFIX}index.html); "
            f"{count} files under {BUNDLE_PREFIX}"
        )
