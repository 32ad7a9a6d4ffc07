"""Agent loading: one app per folder, broken ones reported, relative imports work."""

from __future__ import annotations

from pathlib import Path

from app.server.loader import BrokenApp, LoadedApp, load_agents

AGENT = """
from app.agents import LlmAgent
from app.testing import ScriptedModel
root_agent = LlmAgent(name="{name}", model=ScriptedModel(responses=["hi"]))
"""


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def _by_name(results: list[LoadedApp | BrokenApp]) -> dict[str, LoadedApp | BrokenApp]:
    return {r.name: r for r in results}


def test_loads_agent_py_packages_and_app_objects(tmp_path: Path) -> None:
    _write(tmp_path / "plain" / "agent.py", AGENT.format(name="plain"))
    # A package whose agent.py uses a relative import of a sibling module.
    _write(tmp_path / "pkg" / "__init__.py", "from . import agent\n")
    _write(tmp_path / "pkg" / "helper.py", "NAME = 'pkg'\n")
    _write(
        tmp_path / "pkg" / "agent.py",
        "from .helper import NAME\n" + AGENT.format(name="x").replace('"x"', "NAME"),
    )
    _write(
        tmp_path / "withapp" / "agent.py",
        AGENT.format(name="root") + "from app.apps import App\n"
        "app = App(name='withapp', root_agent=root_agent)\n",
    )
    loaded = _by_name(load_agents(tmp_path))
    assert isinstance(loaded["plain"], LoadedApp)
    assert isinstance(loaded["pkg"], LoadedApp), loaded["pkg"]
    assert loaded["pkg"].root_agent.name == "pkg"
    assert isinstance(loaded["withapp"], LoadedApp)
    assert loaded["withapp"].app is not None
    assert loaded["withapp"].root_agent.name == "root"


def test_relative_imports_inside_an_app(tmp_path: Path) -> None:
    _write(tmp_path / "rel" / "helper.py", "NAME = 'from_helper'\n")
    _write(
        tmp_path / "rel" / "agent.py",
        "from .helper import NAME\n" + AGENT.format(name="x").replace('"x"', "NAME"),
    )
    [result] = load_agents(tmp_path)
    assert isinstance(result, LoadedApp)
    assert result.root_agent.name == "from_helper"


def test_broken_apps_are_reported_and_do_not_stop_others(tmp_path: Path) -> None:
    _write(tmp_path / "good" / "agent.py", AGENT.format(name="good"))
    _write(tmp_path / "syntax" / "agent.py", "def (:\n")
    _write(tmp_path / "raises" / "agent.py", "raise RuntimeError('boom at import')\n")
    _write(tmp_path / "empty" / "agent.py", "x = 1\n")
    _write(tmp_path / "wrongtype" / "agent.py", "root_agent = 42\n")
    _write(
        tmp_path / "mismatch" / "agent.py",
        AGENT.format(name="root") + "from app.apps import App\n"
        "app = App(name='other', root_agent=root_agent)\n",
    )
    results = _by_name(load_agents(tmp_path))
    assert isinstance(results["good"], LoadedApp)
    errors = {name: r.error for name, r in results.items() if isinstance(r, BrokenApp)}
    assert set(errors) == {"syntax", "raises", "empty", "wrongtype", "mismatch"}
    assert "SyntaxError" in errors["syntax"]
    assert "boom at import" in errors["raises"]
    assert "root_agent" in errors["empty"]
    assert "not an agent" in errors["wrongtype"]
    assert "folder name" in errors["mismatch"]


def test_skips_private_hidden_and_non_agent_folders(tmp_path: Path) -> None:
    _write(tmp_path / "_private" / "agent.py", "raise RuntimeError('imported')\n")
    _write(tmp_path / ".hidden" / "agent.py", "raise RuntimeError('imported')\n")
    _write(tmp_path / "notes" / "README.md", "not an app\n")
    _write(tmp_path / "file.py", "raise RuntimeError('imported')\n")
    assert load_agents(tmp_path) == []


def test_missing_agents_dir_loads_nothing(tmp_path: Path) -> None:
    assert load_agents(tmp_path / "absent") == []


def test_each_load_gets_fresh_modules(tmp_path: Path) -> None:
    _write(tmp_path / "a" / "agent.py", AGENT.format(name="a"))
    [first] = load_agents(tmp_path)
    [second] = load_agents(tmp_path)
    assert isinstance(first, LoadedApp) and isinstance(second, LoadedApp)
    assert first.root_agent is not second.root_agent
