"""The built wheel is deployable: installed (not editable) into a fresh environment,
`agent-service migrate` and `serve` work from any directory, migrations included."""

from __future__ import annotations

import shutil
import sqlite3
import subprocess
import sys
import sysconfig
from pathlib import Path

import httpx
import pytest

from app.sessions.migration import head_revision, upgrade
from tests.deploy.process import offline_env, serve

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SOURCES = ("pyproject.toml", "setup.py", "README.md", "app", "migrations")


def _run(*command: str | Path, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    result = subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Build the wheel from a copy of the sources, install it into a fresh venv; return bin/."""
    tmp = tmp_path_factory.mktemp("wheel")
    source = tmp / "source"
    source.mkdir()
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc")
    for name in SOURCES:
        path = ROOT / name
        if path.is_dir():
            shutil.copytree(path, source / name, ignore=ignore)
        else:
            shutil.copy2(path, source / name)
    dist = tmp / "dist"
    # Offline: the build uses this environment's setuptools, the install takes no dependencies.
    _run(
        sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "--no-index",
        "--no-build-isolation", "--wheel-dir", dist, source,
    )  # fmt: skip
    (wheel,) = dist.glob("agent_service-*.whl")
    venv = tmp / "venv"
    _run(sys.executable, "-m", "venv", "--without-pip", venv)
    python = venv / "bin" / "python"
    # The dependencies come from this test environment (read-only), after the venv's own
    # site-packages: `app` itself can only come from the wheel.
    venv_site = Path(
        _run(python, "-c", "import sysconfig; print(sysconfig.get_path('purelib'))").strip()
    )
    (venv_site / "test-dependencies.pth").write_text(
        "\n".join({sysconfig.get_path("purelib"), sysconfig.get_path("platlib")}) + "\n"
    )
    _run(
        sys.executable, "-m", "pip", "--python", python, "install", "--quiet", "--no-deps",
        "--no-index", wheel,
    )  # fmt: skip
    located = _run(python, "-c", "import app; print(app.__file__)", cwd=tmp).strip()
    assert Path(located).is_relative_to(venv_site), located
    assert (venv_site / "app" / "_migrations" / "env.py").is_file()
    return venv / "bin"


@pytest.fixture
def elsewhere(tmp_path: Path) -> Path:
    """An empty working directory: no `migrations/` or `agents/` next to it."""
    path = tmp_path / "cwd"
    path.mkdir()
    return path


def _tables(db: Path) -> set[str]:
    with sqlite3.connect(db) as conn:
        rows = conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall()
    return {name for (name,) in rows}


def _revision(db: Path) -> str:
    with sqlite3.connect(db) as conn:
        (revision,) = conn.execute("SELECT version_num FROM alembic_version").fetchone()
    return str(revision)


# Installing a wheel into a fresh venv and starting it cold is slow by nature (a first import of
# every dependency, no .pyc yet): allow it more than the suite's default.
@pytest.mark.timeout(240)
async def test_installed_wheel_migrates_and_serves_from_another_directory(
    installed: Path, elsewhere: Path, tmp_path: Path
) -> None:
    db = tmp_path / "installed.db"
    command = installed / "agent-service"
    env = offline_env()
    out = _run(
        command, "migrate", "--database-url", f"sqlite+aiosqlite:///{db}", cwd=elsewhere, env=env
    )
    assert "migrated from <empty>" in out
    reference = tmp_path / "checkout.db"
    await upgrade(f"sqlite+aiosqlite:///{reference}")  # the checkout's own migrations
    assert _tables(db) == _tables(reference)
    assert _revision(db) == head_revision()

    # The Docker image's standalone mode: the default SQLite file, migrated at start.
    env.update(AGENT_SERVICE_MIGRATE_ON_START="true", AGENT_SERVICE_AGENTS_DIR=str(ROOT / "agents"))
    with serve([str(command), "serve"], env=env, cwd=elsewhere) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as client:
            ready = await client.get("/readyz")
            assert ready.status_code == 200, ready.text
            apps = (await client.get("/apps")).json()
    assert "assistant" in str(apps)
    assert _revision(elsewhere / "data" / "agent-service.db") == head_revision()
