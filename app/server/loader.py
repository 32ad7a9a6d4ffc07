"""Agent loading: every folder of the agents dir is an app exposing `root_agent` or `app`.

A folder is loaded as a package under a unique module name, so relative imports inside it
work and two agents dirs (or two servers in one test process) never share modules. A folder
that fails to load is reported with its error and does not stop the others.
"""

from __future__ import annotations

import importlib
import importlib.util
import itertools
import logging
import sys
import types as pytypes
from dataclasses import dataclass
from pathlib import Path

from app.agents import BaseAgent
from app.apps import App

logger = logging.getLogger(__name__)

_load_counter = itertools.count(1)


@dataclass(frozen=True)
class LoadedApp:
    """An app that loaded: its name (the folder name) and what it exposes."""

    name: str
    root_agent: BaseAgent
    app: App | None = None


@dataclass(frozen=True)
class BrokenApp:
    """An app folder that failed to load, and why."""

    name: str
    error: str


def discover_app_dirs(agents_dir: Path) -> list[Path]:
    """Return the app folders of `agents_dir`, sorted; `_x` and `.x` folders are skipped."""
    if not agents_dir.is_dir():
        return []
    return sorted(
        child
        for child in agents_dir.iterdir()
        if child.is_dir()
        and not child.name.startswith(("_", "."))
        and ((child / "agent.py").is_file() or (child / "__init__.py").is_file())
    )


def load_agents(agents_dir: Path) -> list[LoadedApp | BrokenApp]:
    """Import every app folder of `agents_dir`; failures become `BrokenApp` entries."""
    agents_dir = agents_dir.resolve()
    if not agents_dir.is_dir():
        logger.warning("agents dir not found path=%s; no apps loaded", agents_dir)
        return []
    # Agents may import their siblings absolutely (`import agents.shared`), as the seeds do.
    parent = str(agents_dir.parent)
    if parent not in sys.path:
        sys.path.append(parent)
    prefix = f"_agent_service_apps_{next(_load_counter)}"
    root = pytypes.ModuleType(prefix)
    root.__path__ = [str(agents_dir)]
    sys.modules[prefix] = root

    results: list[LoadedApp | BrokenApp] = []
    for folder in discover_app_dirs(agents_dir):
        try:
            results.append(_load_one(prefix, folder))
        except Exception as exc:  # noqa: BLE001 - one broken agent must not take down the rest
            error = f"{type(exc).__name__}: {exc}"
            logger.error("agent failed to load app=%s error=%s", folder.name, error)
            results.append(BrokenApp(name=folder.name, error=error))
    return results


def _load_one(prefix: str, folder: Path) -> LoadedApp:
    package_name = f"{prefix}.{folder.name}"
    package = _import_package(package_name, folder)
    found = _exported(package)
    if found is None and (folder / "agent.py").is_file():
        found = _exported(importlib.import_module(f"{package_name}.agent"))
    if found is None:
        raise LookupError(f"{folder.name}: agent.py defines neither `root_agent` nor `app`")
    if isinstance(found, App):
        if found.name != folder.name:
            raise ValueError(f"App name {found.name!r} must equal its folder name {folder.name!r}")
        return LoadedApp(name=folder.name, root_agent=found.root_agent, app=found)
    return LoadedApp(name=folder.name, root_agent=found)


def _import_package(name: str, folder: Path) -> pytypes.ModuleType:
    """Import `folder` as package `name` (a bare namespace when it has no `__init__.py`)."""
    init = folder / "__init__.py"
    if not init.is_file():
        module = pytypes.ModuleType(name)
        module.__path__ = [str(folder)]
        sys.modules[name] = module
        return module
    spec = importlib.util.spec_from_file_location(
        name, init, submodule_search_locations=[str(folder)]
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(name, None)
        raise
    return module


def _exported(module: pytypes.ModuleType) -> App | BaseAgent | None:
    """Return the module's `app` (an App) or `root_agent` (a BaseAgent), else None."""
    app = getattr(module, "app", None)
    if isinstance(app, App):
        return app
    agent = getattr(module, "root_agent", None)
    if agent is None:
        return None
    if not isinstance(agent, BaseAgent):
        raise TypeError(f"root_agent is a {type(agent).__name__}, not an agent")
    return agent
