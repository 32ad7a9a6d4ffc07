"""Settings come from AGENT_SERVICE_* variables; bad ones are named."""

from __future__ import annotations

import pytest

from app.errors import ConfigError
from app.server.settings import Settings, load_settings


def test_defaults_serve_sqlite_and_the_example_agents(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(Settings.model_fields):
        monkeypatch.delenv("AGENT_SERVICE_" + name.upper(), raising=False)
    settings = load_settings()
    assert settings.database_url == "sqlite+aiosqlite:///./data/agent-service.db"
    assert str(settings.agents_dir) == "agents"
    assert (settings.host, settings.port) == ("127.0.0.1", 8000)
    assert settings.max_body_bytes == 1024 * 1024
    assert settings.keepalive_seconds == 15
    assert settings.auto_create_session is False
    assert settings.migrate_on_start is False
    assert settings.close_idle_sessions_after is None  # idle sessions are never closed
    assert settings.memory_language == "english"


def test_environment_overrides(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AGENT_SERVICE_PORT", "9000")
    monkeypatch.setenv("AGENT_SERVICE_CORS_ORIGINS", '["http://localhost:5173"]')
    monkeypatch.setenv("AGENT_SERVICE_LOG_LEVEL", "WARNING")
    monkeypatch.setenv("AGENT_SERVICE_MIGRATE_ON_START", "true")
    settings = load_settings()
    assert settings.port == 9000
    assert settings.cors_origins == ["http://localhost:5173"]
    assert settings.log_level == "warning"
    assert settings.migrate_on_start is True


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("AGENT_SERVICE_PORT", "99999"),
        ("AGENT_SERVICE_PORT", "http"),
        ("AGENT_SERVICE_LOG_LEVEL", "loud"),
        ("AGENT_SERVICE_MAX_BODY_BYTES", "10"),
        ("AGENT_SERVICE_KEEPALIVE_SECONDS", "0"),
        ("AGENT_SERVICE_CORS_ORIGINS", "http://not-json"),
        ("AGENT_SERVICE_CLOSE_IDLE_SESSIONS_AFTER", "0"),
        ("AGENT_SERVICE_CLOSE_IDLE_SESSIONS_AFTER", "soon"),
        ("AGENT_SERVICE_MEMORY_LANGUAGE", "english; drop"),
        ("AGENT_SERVICE_RUN_RATE", "60"),
        ("AGENT_SERVICE_RUN_RATE", "60/week"),
        ("AGENT_SERVICE_RUN_RATE", "0/minute"),
        ("AGENT_SERVICE_TOKEN_BUDGET", "lots/day"),
        ("AGENT_SERVICE_MAX_ACTIVE_RUNS_PER_USER", "0"),
        ("AGENT_SERVICE_MAX_ACTIVE_RUNS_PER_USER", "two"),
    ],
)
def test_bad_variables_are_named(monkeypatch: pytest.MonkeyPatch, name: str, value: str) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=name):
        load_settings()
