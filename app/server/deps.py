"""Dependencies: the long-lived `Services`, and validated path parameters, as Annotated aliases.

Every dependency is `async def`: FastAPI runs a plain `def` dependency in a worker thread,
a thread hand-off per request that measurably costs CPU and latency on the run route.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, cast

from fastapi import Depends, Path, Request
from starlette.requests import HTTPConnection

from app.artifacts import BaseArtifactService
from app.memory import BaseMemoryService
from app.server.errors import UnsupportedMediaTypeError
from app.server.idle_sessions import IdleSessionCloser
from app.server.registry import RunnerRegistry
from app.server.schemas import ID_PATTERN
from app.server.settings import Settings
from app.sessions import BaseSessionService


@dataclass(frozen=True)
class Services:
    """Everything built at start-up and closed at shutdown (on `app.state.services`)."""

    settings: Settings
    sessions: BaseSessionService
    artifacts: BaseArtifactService
    memory: BaseMemoryService
    runners: RunnerRegistry
    check_ready: Callable[[], Awaitable[None]]
    """Raise DatabaseUnavailableError unless the database answers and its schema is current."""
    idle_closer: IdleSessionCloser | None = None
    """Closes idle sessions into memory (`AGENT_SERVICE_CLOSE_IDLE_SESSIONS_AFTER`)."""


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


Sessions = Annotated[BaseSessionService, Depends(get_sessions)]
Artifacts = Annotated[BaseArtifactService, Depends(get_artifacts)]
Registry = Annotated[RunnerRegistry, Depends(get_registry)]
Memory = Annotated[BaseMemoryService, Depends(get_memory)]

AppName = Annotated[
    str, Path(min_length=1, max_length=128, pattern=ID_PATTERN, description="App name.")
]
UserId = Annotated[
    str, Path(min_length=1, max_length=128, pattern=ID_PATTERN, description="User id.")
]
SessionId = Annotated[
    str, Path(min_length=1, max_length=128, pattern=ID_PATTERN, description="Session id.")
]
ArtifactName = Annotated[
    str,
    Path(min_length=1, max_length=256, pattern=ID_PATTERN, description="Artifact file name."),
]


async def require_json(request: Request) -> None:
    """Refuse a body that is declared as something other than JSON (415).

    A body without a Content-Type is parsed as JSON, as FastAPI does.
    """
    content_type = request.headers.get("content-type")
    if content_type is None:
        return
    media_type = content_type.split(";", 1)[0].strip().lower()
    if media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    ):
        return
    raise UnsupportedMediaTypeError(
        f"Expected an application/json body, got {media_type or 'an empty Content-Type'}."
    )


JsonBody = Depends(require_json)
"""Route-level dependency for routes that take a JSON body."""
