"""The lock files pin every dependency pyproject.toml declares, and this environment runs them."""

from __future__ import annotations

import tomllib
from importlib import metadata
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
LOCK = ROOT / "requirements" / "lock.txt"
RUNTIME_LOCK = ROOT / "requirements" / "runtime.txt"
REGENERATE = "pyproject.toml and the lock disagree: run `make lock` and commit requirements/"


def _pins(path: Path) -> dict[str, Requirement]:
    """Return the lock's `name==version` lines that apply to this platform, by name."""
    pins: dict[str, Requirement] = {}
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        requirement = Requirement(line)
        (specifier,) = requirement.specifier  # exactly one: a pin
        assert specifier.operator == "==", f"{path.name}: {line} is not pinned"
        if requirement.marker is None or requirement.marker.evaluate():
            pins[canonicalize_name(requirement.name)] = requirement
    return pins


def _declared() -> dict[str, list[Requirement]]:
    """Return pyproject's requirements: the runtime ones, then one list per extra."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = {"runtime": [Requirement(r) for r in project["dependencies"]]}
    for extra, requirements in project["optional-dependencies"].items():
        declared[extra] = [
            Requirement(r) for r in requirements if canonicalize_name(Requirement(r).name)
            != canonicalize_name(project["name"])
        ]  # fmt: skip
    return declared


def _pinned_version(pins: dict[str, Requirement], requirement: Requirement) -> str:
    pin = pins.get(canonicalize_name(requirement.name))
    assert pin is not None, f"{requirement} is not in the lock; {REGENERATE}"
    version = next(iter(pin.specifier)).version
    assert requirement.specifier.contains(version, prereleases=True), (
        f"the lock pins {pin.name}=={version}, outside {requirement}; {REGENERATE}"
    )
    return version


def _extra_requirements(requirement: Requirement) -> list[Requirement]:
    """Return what `requirement`'s extras (e.g. uvicorn[standard]) add on this platform."""
    added = []
    for line in metadata.requires(requirement.name) or []:
        dependency = Requirement(line)
        marker = dependency.marker
        if marker is None or marker.evaluate({"extra": ""}):
            continue  # a plain dependency, not one of an extra
        if any(marker.evaluate({"extra": extra}) for extra in requirement.extras):
            added.append(dependency)
    return added


@pytest.mark.parametrize("lock", [LOCK, RUNTIME_LOCK], ids=["lock", "runtime"])
def test_every_runtime_requirement_is_pinned_within_its_range(lock: Path) -> None:
    pins = _pins(lock)
    for requirement in _declared()["runtime"]:
        _pinned_version(pins, requirement)


def test_every_extra_requirement_is_pinned_in_the_full_lock() -> None:
    pins = _pins(LOCK)
    for extra, requirements in _declared().items():
        for requirement in requirements:
            assert _pinned_version(pins, requirement), extra


def test_the_extras_of_requirements_are_pinned_too() -> None:
    """uvicorn[standard] and sqlalchemy[asyncio] pull in more packages: those are pinned."""
    pins = _pins(LOCK)
    runtime = _pins(RUNTIME_LOCK)
    with_extras = [r for r in _declared()["runtime"] if r.extras]
    assert with_extras
    for requirement in with_extras:
        added = _extra_requirements(requirement)
        assert added, f"{requirement} adds nothing here"
        for dependency in added:
            _pinned_version(pins, dependency)
            _pinned_version(runtime, dependency)


def test_the_runtime_lock_is_the_full_lock_s_subset() -> None:
    full = _pins(LOCK)
    for name, pin in _pins(RUNTIME_LOCK).items():
        assert name in full and full[name].specifier == pin.specifier, f"{pin}: {REGENERATE}"


def test_this_environment_runs_the_locked_versions() -> None:
    """`make test` installs from the lock: what runs the suite is what the lock pins."""
    for name, pin in _pins(LOCK).items():
        expected = next(iter(pin.specifier)).version
        assert metadata.version(name) == expected, (
            f"{name} {metadata.version(name)} is installed, the lock pins {expected}: "
            "run `make test` (it reinstalls from requirements/lock.txt)"
        )
