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
    text = (ROOT / "Dockerfile").read_text()
    assert re.search(r"^FROM python:3\.11-slim$", text, re.M)
    assert "RUN pip install ." in text
    assert "COPY migrations" in text
    user = re.search(r"^USER (\S+)$", text, re.M)
    assert user is not None and user.group(1) not in ("root", "0")
    assert "HEALTHCHECK" in text and "/healthz" in text
    assert 'CMD ["agent-service", "serve", "--host", "0.0.0.0"]' in text
    for variable in re.findall(r"\b(AGENT_SERVICE_[A-Z_]+)=", text):
        assert variable in _settings_variables() | NON_SETTINGS_VARIABLES
