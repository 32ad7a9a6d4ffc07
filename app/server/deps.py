"""Dependencies: the long-lived `Services`, and validated path parameters, as Annotated aliases.

Every dependency is `async def`: FastAPI runs a plain `def` dependency in a worker thread,
a thread hand-off per request that measurably costs CPU and latency on the run route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any, cast

from fastapi import Depends, Path, Request
from starlette.requests import HTTPConnection

from app.artifacts import BaseArtifactService
from app.ids import (
    MAX_ARTIFACT_NAME_LENGTH,
    MAX_ID_LENGTH,
    NAME_PATTERN,
    SEGMENT_PATTERN,
    SESSION_ID_RULE,
)
from app.memory import BaseMemoryService
from app.runs import RunManager
from app.server._run_stream import RunArgs
from app.server.errors import UnsupportedMediaTypeError
from app.server.idle_sessions import IdleSessionCloser
from app.server.quotas import Quotas, RunQuota
from app.server.registry import RunnerRegistry
from app.server.security.authenticator import Authenticator
from app.server.security.principal import Principal, principal_of
from app.server.settings import Settings
from app.server.text_checks import check_body, may_hold_forbidden
from app.sessions import BaseSessionService


@dataclass(frozen=True)
class Services:
    """Everything built at start-up and closed at shutdown (on `app.state.services`)."""

    settings: Settings
    sessions: BaseSessionService
    artifacts: BaseArtifactService
    memory: BaseMemoryService
    runners: RunnerRegistry
    runs: RunManager
    check_ready: Callable[[], Awaitable[None]]
    """Raise DatabaseUnavailableError unless the database answers and its schema is current."""
    idle_closer: IdleSessionCloser | None = None
    """Closes idle sessions into memory (`AGENT_SERVICE_CLOSE_IDLE_SESSIONS_AFTER`)."""
    authenticator: Authenticator | None = None
    """Who may call (None: `AGENT_SERVICE_AUTH=none`, everyone)."""
    quotas: Quotas | None = None
    """Per-user limits on runs and tokens (None: no quota set)."""

    def quota_for(self, user_id: str) -> RunQuota | None:
        """The quota tracker for one run of `user_id` (`RunArgs.quota`); None: no quota set."""
        return None if self.quotas is None else self.quotas.for_run(user_id)

    def run_args(self, app: str, user_id: str, session_id: str, **options: Any) -> RunArgs:
        """`RunArgs` for one run, whatever the protocol: this service's runs, the app's runner,
        the keep-alive and the user's quotas are filled here, so no route can miss one.

        `options` are the remaining `RunArgs` fields (message, invocation id, run config...).
        """
        return RunArgs(
            runs=self.runs,
            runner=self.runners.runner(app),
            app_name=app,
            user_id=user_id,
            session_id=session_id,
            keepalive_seconds=self.settings.keepalive_seconds,
            quota=self.quota_for(user_id),
            **options,
        )


async def get_services(conn: HTTPConnection) -> Services:
    """Return the app's Services (HTTPConnection also serves WebSockets)."""
    return cast(Services, conn.app.state.services)


ServicesDep = Annotated[Services, Depends(get_services)]


async def get_sessions(services: ServicesDep) -> BaseSessionService:
    """Return the session service."""
    return services.sessions


async def get_artifacts(services: ServicesDep) -> BaseArtifactService:
    """Return the artifact service."""
    return services.artifacts


async def get_memory(services: ServicesDep) -> BaseMemoryService:
    """Return the memory service."""
    return services.memory


async def get_registry(services: ServicesDep) -> RunnerRegistry:
    """Return the runner registry."""
    return services.runners


async def get_principal(conn: HTTPConnection) -> Principal | None:
    """Return the authenticated caller (None when auth is off)."""
    return principal_of(conn)


Caller = Annotated[Principal | None, Depends(get_principal)]
Sessions = Annotated[BaseSessionService, Depends(get_sessions)]
Artifacts = Annotated[BaseArtifactService, Depends(get_artifacts)]
Registry = Annotated[RunnerRegistry, Depends(get_registry)]
Memory = Annotated[BaseMemoryService, Depends(get_memory)]

AppName = Annotated[
    str,
    Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=SEGMENT_PATTERN, description="App name."),
]
UserId = Annotated[
    str,
    Path(min_length=1, max_length=MAX_ID_LENGTH, pattern=SEGMENT_PATTERN, description="User id."),
]
SessionId = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_ID_LENGTH,
        pattern=SEGMENT_PATTERN,
        description=f"Session id: {SESSION_ID_RULE}.",
    ),
]
ArtifactName = Annotated[
    str,
    Path(
        min_length=1,
        max_length=MAX_ARTIFACT_NAME_LENGTH,
        pattern=NAME_PATTERN,
        description="Artifact file name (may contain `/`).",
    ),
]


async def require_json(request: Request) -> None:
    """Refuse a body that is not declared as JSON (415) or that holds text we cannot store (422).

    A body without a Content-Type is parsed as JSON, as FastAPI does. NUL characters and lone
    surrogates are refused anywhere in it, keys included (see `text_checks`).
    """
    content_type = request.headers.get("content-type")
    if content_type is not None:
        media_type = content_type.split(";", 1)[0].strip().lower()
        if not (
            media_type == "application/json"
            or (media_type.startswith("application/") and media_type.endswith("+json"))
        ):
            raise UnsupportedMediaTypeError(
                f"Expected an application/json body, got {media_type or 'an empty Content-Type'}."
            )
    raw = await request.body()  # already read (and parsed) by FastAPI: both are cached
    if not may_hold_forbidden(raw):
        return
    try:
        body = await request.json()
    except (ValueError, RecursionError):
        return  # not JSON: FastAPI's own body validation answers it
    check_body(body)


JsonBody = Depends(require_json)
"""Route-level dependency for routes that take a JSON body."""
