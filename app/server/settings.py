"""Settings: the server's configuration, read from `AGENT_SERVICE_*` environment variables."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import pydantic_settings
from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from app.errors import ConfigError
from app.server.dev_ui.bundle import dev_ui_directory
from app.server.quotas.rates import WindowLimit, parse_window_limit

ENV_PREFIX = "AGENT_SERVICE_"

LogLevel = Literal["critical", "error", "warning", "info", "debug"]
LogFormat = Literal["text", "json"]


class Settings(BaseSettings):
    """Everything the server reads from the environment; built once by `load_settings()`."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, extra="ignore")

    database_url: str = "sqlite+aiosqlite:///./data/agent-service.db"
    """SQLAlchemy async URL (`postgresql+asyncpg://…`, `sqlite+aiosqlite:///…`) or `memory://`."""

    db_pool_size: int = Field(default=30, ge=1, le=1000)
    """Postgres connections each process keeps open (10 more are opened for bursts)."""

    agents_dir: Path = Path("./agents")
    """Folder of apps: each sub-folder with an `agent.py` (or package) is one app."""

    host: str = "127.0.0.1"
    """Interface `agent-service serve` binds to."""

    port: int = Field(default=8000, ge=1, le=65535)
    """Port `agent-service serve` listens on."""

    cors_origins: list[str] = []
    """Origins allowed by CORS, as JSON: `["http://localhost:5173"]`. Empty: CORS off."""

    max_body_bytes: int = Field(default=1024 * 1024, ge=1024)
    """Largest request body accepted; larger ones get 413 before they are read."""

    log_level: LogLevel = "info"
    """Log level of the server and uvicorn."""

    log_format: LogFormat = "text"
    """`json`: one JSON object per log line, with request, trace and run ids (README)."""

    metrics: bool = True
    """Record Prometheus metrics and serve them on `GET /metrics`."""

    metrics_port: int | None = Field(default=None, ge=1, le=65535)
    """Serve `/metrics` on this port instead of the API's (`agent-service serve` only)."""

    auto_create_session: bool = False
    """Create a missing session on `:run` even without `createSession: true`."""

    migrate_on_start: bool = False
    """Apply pending migrations at start-up instead of refusing to start."""

    keepalive_seconds: float = Field(default=15.0, gt=0, le=3600)
    """Idle time after which an SSE stream gets a `: ping` comment."""

    run_lease_seconds: float = Field(default=10.0, gt=0, le=3600)
    """How long a run's lease lasts unless renewed; a dead replica's runs are sealed after it."""

    drain_seconds: float = Field(default=30.0, ge=0, le=3600)
    """On SIGTERM, how long running runs get to finish before they are cancelled."""

    memory_language: str = Field(default="english", pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    """Postgres text-search configuration for memory (`english`, `french`, `simple`...)."""

    close_idle_sessions_after: float | None = Field(default=None, gt=0)
    """Seconds without activity after which a session is closed into memory (unset: never)."""

    dev_ui: bool = False
    """Serve the ADK dev UI at `/dev-ui/` from the cache `agent-service devui fetch` fills."""

    dev_ui_dir: Path | None = None
    """Serve the ADK dev UI at `/dev-ui/` from this folder (wins over `dev_ui`)."""

    auth: str = "none"
    """Who may call: `none`, `api_key`, `jwt` or `api_key,jwt` (either credential)."""

    api_key_cache_seconds: float = Field(default=10.0, ge=0, le=3600)
    """How long a verified API key is trusted without asking the database (revocation delay)."""

    jwt_secret: str | None = None
    """HS256 secret for JWTs (at least 32 bytes); exclusive with `jwt_jwks_url`."""

    jwt_jwks_url: str | None = None
    """JWKS URL of the identity provider (RS/PS/ES/EdDSA tokens); exclusive with `jwt_secret`."""

    jwt_issuer: str | None = None
    """Required `iss` of JWTs (unchecked when unset)."""

    jwt_audience: str | None = None
    """Required `aud` of JWTs (tokens with an `aud` claim are refused when unset)."""

    jwt_user_claim: str = Field(default="sub", min_length=1)
    """JWT claim holding the user id."""

    jwt_leeway_seconds: float = Field(default=30.0, ge=0, le=600)
    """Clock skew allowed on `exp`/`nbf`."""

    run_rate: str | None = None
    """Runs each user may start per window, e.g. `60/minute` (second, minute, hour, day)."""

    max_active_runs_per_user: int | None = Field(default=None, ge=1)
    """Runs (queued or running, live sockets included) each user may have at once."""

    token_budget: str | None = None
    """Model tokens each user may use per window, e.g. `200000/day` (from `usageMetadata`)."""

    @property
    def run_rate_limit(self) -> WindowLimit | None:
        """`run_rate` parsed (None: off)."""
        return parse_window_limit(self.run_rate) if self.run_rate else None

    @property
    def token_budget_limit(self) -> WindowLimit | None:
        """`token_budget` parsed (None: off)."""
        return parse_window_limit(self.token_budget) if self.token_budget else None

    @field_validator("run_rate", "token_budget", mode="after")
    @classmethod
    def _check_window_limit(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        parse_window_limit(value)
        return value

    @property
    def auth_methods(self) -> frozenset[str]:
        """The accepted credentials (empty when auth is off)."""
        return parse_auth(self.auth)

    @field_validator("auth", mode="after")
    @classmethod
    def _check_auth(cls, value: str) -> str:
        parse_auth(value)
        return value

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _lower_log_level(cls, value: object) -> object:
        return value.lower() if isinstance(value, str) else value


AUTH_METHODS = frozenset({"api_key", "jwt"})


def parse_auth(value: str) -> frozenset[str]:
    """Parse an `AGENT_SERVICE_AUTH` value into its methods (`none` is the empty set).

    Raises:
        ValueError: an unknown method, or `none` mixed with others.
    """
    parts = [part.strip().lower() for part in value.split(",")]
    if parts == ["none"]:
        return frozenset()
    if not parts or any(part not in AUTH_METHODS for part in parts):
        raise ValueError("expected none, api_key, jwt or api_key,jwt")
    return frozenset(parts)


def check_auth_settings(settings: Settings) -> None:
    """Check that the settings the chosen auth methods need are there and consistent.

    Raises:
        ConfigError: naming the variables at fault.
    """
    methods = settings.auth_methods
    if "api_key" in methods and settings.database_url == "memory://":
        raise ConfigError(
            f"invalid settings: {ENV_PREFIX}AUTH=api_key needs a database "
            f"({ENV_PREFIX}DATABASE_URL is memory://)"
        )
    if "jwt" not in methods:
        return
    secret, jwks = settings.jwt_secret, settings.jwt_jwks_url
    if (secret is None) == (jwks is None):
        raise ConfigError(
            f"invalid settings: {ENV_PREFIX}AUTH=jwt needs exactly one of "
            f"{ENV_PREFIX}JWT_SECRET and {ENV_PREFIX}JWT_JWKS_URL"
        )
    if secret is not None and len(secret.encode()) < 32:
        raise ConfigError(f"invalid settings: {ENV_PREFIX}JWT_SECRET (at least 32 bytes)")
    if jwks is not None and not jwks.startswith(("https://", "http://")):
        raise ConfigError(f"invalid settings: {ENV_PREFIX}JWT_JWKS_URL (expected an http(s) URL)")


def load_settings() -> Settings:
    """Read the environment; on bad input, name the variables at fault.

    Raises:
        ConfigError: a variable is malformed (e.g. `AGENT_SERVICE_PORT=99999`).
    """
    try:
        settings = Settings()
    except ValidationError as exc:
        names = sorted({ENV_PREFIX + str(e["loc"][0]).upper() for e in exc.errors() if e["loc"]})
        raise ConfigError(f"invalid settings: {', '.join(names)}") from exc
    except pydantic_settings.SettingsError as exc:  # e.g. a list variable that is not JSON
        match = re.search(r'field "(\w+)"', str(exc))
        name = ENV_PREFIX + match.group(1).upper() if match else str(exc)
        raise ConfigError(f"invalid settings: {name} (expected JSON)") from exc
    check_auth_settings(settings)
    dev_ui_directory(settings.dev_ui_dir, settings.dev_ui)  # a missing bundle fails here
    return settings
