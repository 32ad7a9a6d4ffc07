"""Dockerfile and docker-compose.yml are wired to the real settings and commands."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from app.server.settings import ENV_PREFIX, Settings

ROOT = Path(__file__).resolve().parents[2]

# AGENT_SERVICE_* variables read outside Settings (by the migration module).
NON_SETTINGS_VARIABLES = {"AGENT_SERVICE_MIGRATIONS_DIR"}

# What google-genai and google-auth read to reach Gemini or Vertex AI.
MODEL_CREDENTIALS = (
    "GOOGLE_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_GENAI_USE_VERTEXAI",
    "GOOGLE_CLOUD_PROJECT",
    "GOOGLE_CLOUD_LOCATION",
    "GOOGLE_APPLICATION_CREDENTIALS",
)


def _compose() -> dict[str, Any]:
    yaml = pytest.importorskip("yaml")
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def _settings_variables() -> set[str]:
    return {ENV_PREFIX + name.upper() for name in Settings.model_fields}


def test_compose_sets_only_known_agent_service_variables() -> None:
    known = _settings_variables() | NON_SETTINGS_VARIABLES
    for name, service in _compose()["services"].items():
        for variable in service.get("environment", {}):
            if variable.startswith(ENV_PREFIX):
                assert variable in known, f"{name}: {variable} is not a setting"


def test_compose_wires_postgres_migrate_and_api() -> None:
    compose = _compose()
    services = compose["services"]
    postgres, migrate, api = services["postgres"], services["migrate"], services["api"]
    assert postgres["image"].startswith("postgres:16")
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])
    volume = postgres["volumes"][0].split(":")[0]
    assert volume in compose["volumes"]
    assert migrate["command"] == ["agent-service", "migrate"]
    assert migrate["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert api["depends_on"]["postgres"]["condition"] == "service_healthy"
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for service in (migrate, api):
        url = service["environment"]["AGENT_SERVICE_DATABASE_URL"]
        assert url.startswith("postgresql+asyncpg://") and "@postgres:5432/" in url


def test_dockerfile_runs_the_server_as_a_non_root_user() -> None:
    text = _dockerfile()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    user = re.search(r"^USER (\S+)$", text, re.M)
    assert user is not None and user.group(1) not in ("root", "0")
    assert _instructions(text)[-1] == 'CMD ["agent-service", "serve", "--host", "0.0.0.0"]'
    for variable in re.findall(r"\b(AGENT_SERVICE_[A-Z_]+)=", text):
        assert variable in _settings_variables() | NON_SETTINGS_VARIABLES


def test_dockerfile_installs_the_locked_dependencies_before_copying_the_code() -> None:
    """A change under app/ reuses the dependency layer; only the lock invalidates it."""
    steps = _instructions(_dockerfile())
    install_deps = _index(steps, "RUN pip install --no-deps -r ")
    copied_before = [s for s in steps[:install_deps] if s.startswith(("COPY", "ADD"))]
    assert copied_before == ["COPY requirements/runtime.txt /tmp/runtime.txt"]
    assert "/tmp/runtime.txt" in steps[install_deps]
    copy_app = _index(steps, "COPY app ")
    install_package = _index(steps, "RUN pip install --no-deps /tmp/src")
    assert install_deps < copy_app < install_package
    # The package comes from its wheel, migrations included: no path override needed.
    assert "COPY migrations /tmp/src/migrations" in steps
    assert "AGENT_SERVICE_MIGRATIONS_DIR" not in _dockerfile()


def test_dockerfile_migrates_its_embedded_sqlite_database_at_start() -> None:
    env = _dockerfile_env()
    assert env["AGENT_SERVICE_DATABASE_URL"].startswith("sqlite+aiosqlite:////srv/data/")
    assert env["AGENT_SERVICE_MIGRATE_ON_START"] == "true"
    assert "chown agent:agent /srv/data" in _dockerfile()


def test_dockerfile_health_check_asks_for_readiness() -> None:
    (check,) = [s for s in _instructions(_dockerfile()) if s.startswith("HEALTHCHECK")]
    assert "/readyz" in check and "/healthz" not in check


def test_dockerfile_documents_passing_every_model_credential_through() -> None:
    usage = "".join(line for line in _dockerfile().splitlines(True) if line.startswith("#"))
    for variable in MODEL_CREDENTIALS:
        assert f"-e {variable} " in usage or f"-e {variable}\n" in usage, variable
    # Nothing in the image sets them (an empty GOOGLE_APPLICATION_CREDENTIALS breaks auth).
    assert not set(MODEL_CREDENTIALS) & set(_dockerfile_env())


def test_compose_builds_the_image_once_and_reuses_it() -> None:
    services = _compose()["services"]
    builders = [name for name, service in services.items() if "build" in service]
    assert builders == ["migrate"]
    image = services["migrate"]["image"]
    assert services["api"]["image"] == image
    assert services["api"]["pull_policy"] == "never"


def test_compose_api_checks_readiness_and_leaves_the_schema_to_migrate() -> None:
    api = _compose()["services"]["api"]
    assert any("/readyz" in part for part in api["healthcheck"]["test"])
    assert api["environment"]["AGENT_SERVICE_MIGRATE_ON_START"] == "false"


def test_compose_passes_every_model_credential_through_when_set() -> None:
    environment = _compose()["services"]["api"]["environment"]
    for variable in MODEL_CREDENTIALS:
        # A key without a value: compose copies it from the shell, or leaves it unset.
        assert variable in environment and environment[variable] is None, variable


def test_ci_runs_lint_and_tests_and_refuses_an_empty_run() -> None:
    text = (ROOT / ".ci" / "run").read_text()
    assert re.search(r"^make lint$", text, re.M)
    assert re.search(r"^make test\b", text, re.M)
    assert "passed" in text  # the guard against a run that collected nothing


def _dockerfile() -> str:
    return (ROOT / "Dockerfile").read_text()


def _instructions(text: str) -> list[str]:
    """Return the Dockerfile's instructions, continuation lines joined, comments dropped."""
    joined = re.sub(r"\\\n\s*", " ", text)
    return [line.strip() for line in joined.splitlines() if line.strip() and line[0] != "#"]


def _index(steps: list[str], prefix: str) -> int:
    matches = [i for i, step in enumerate(steps) if step.startswith(prefix)]
    assert len(matches) == 1, f"{prefix!r}: {matches}"
    return matches[0]


def _dockerfile_env() -> dict[str, str]:
    env: dict[str, str] = {}
    for step in _instructions(_dockerfile()):
        if step.startswith("ENV "):
            env.update(pair.split("=", 1) for pair in step[4:].split())
    return env
