"""RunnerRegistry: one Runner per loaded app, plus the apps that failed to load."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Iterable
from typing import Any

from app.agents import BaseAgent
from app.artifacts import BaseArtifactService
from app.errors import AppNotFoundError
from app.memory import BaseMemoryService
from app.runners import Runner
from app.server.errors import AppUnavailableError
from app.server.loader import BrokenApp, LoadedApp
from app.server.schemas import AgentOut, AppOut, ToolOut
from app.sessions import BaseSessionService

logger = logging.getLogger(__name__)


class RunnerRegistry:
    """Maps app names to Runners sharing one set of services; knows the broken apps too."""

    def __init__(
        self,
        loaded: Iterable[LoadedApp | BrokenApp],
        *,
        session_service: BaseSessionService,
        artifact_service: BaseArtifactService | None,
        memory_service: BaseMemoryService | None,
        auto_create_session: bool = False,
    ) -> None:
        self._runners: dict[str, Runner] = {}
        self._broken: dict[str, str] = {}
        self._info: dict[str, AppOut] = {}
        for entry in loaded:
            if isinstance(entry, BrokenApp):
                self._broken[entry.name] = entry.error
                self._info[entry.name] = AppOut(name=entry.name, available=False, error=entry.error)
                continue
            runner_args: dict[str, Any] = {
                "session_service": session_service,
                "artifact_service": artifact_service,
                "memory_service": memory_service,
                "auto_create_session": auto_create_session,
            }
            if entry.app is not None:
                runner = Runner(app=entry.app, **runner_args)
            else:
                runner = Runner(app_name=entry.name, agent=entry.root_agent, **runner_args)
            self._runners[entry.name] = runner
            self._info[entry.name] = AppOut(
                name=entry.name,
                description=entry.root_agent.description,
                root_agent=describe_agent(entry.root_agent),
            )

    def runner(self, app_name: str) -> Runner:
        """Return the app's Runner.

        Raises:
            AppNotFoundError: no folder of that name.
            AppUnavailableError: the app failed to load.
        """
        runner = self._runners.get(app_name)
        if runner is not None:
            return runner
        if app_name in self._broken:
            raise AppUnavailableError(app_name)
        raise AppNotFoundError(app_name)

    def require_known(self, app_name: str) -> None:
        """Raise AppNotFoundError unless the app exists (loaded or broken)."""
        if app_name not in self._info:
            raise AppNotFoundError(app_name)

    def app_info(self, app_name: str) -> AppOut:
        """Return what `GET /apps/{app}` shows."""
        info = self._info.get(app_name)
        if info is None:
            raise AppNotFoundError(app_name)
        return info

    def apps(self) -> list[AppOut]:
        """Return every app, loaded or broken, sorted by name."""
        return [self._info[name] for name in sorted(self._info)]

    @property
    def names(self) -> list[str]:
        """Names of the apps that loaded."""
        return sorted(self._runners)

    async def close(self) -> None:
        """Close every Runner (their plugins and toolsets)."""
        for name, runner in self._runners.items():
            try:
                await runner.close()
            except Exception:
                logger.exception("runner close failed app=%s", name)
        self._runners.clear()


def describe_agent(agent: BaseAgent) -> AgentOut:
    """Return an agent's name, description, tools and sub-agents for `GET /apps`."""
    tools = [_describe_tool(tool) for tool in getattr(agent, "tools", None) or []]
    return AgentOut(
        name=agent.name,
        description=agent.description or "",
        tools=tools,
        sub_agents=[describe_agent(child) for child in agent.sub_agents],
    )


def _describe_tool(tool: object) -> ToolOut:
    name = getattr(tool, "name", None) or getattr(tool, "__name__", None) or type(tool).__name__
    description = getattr(tool, "description", None)
    if not isinstance(description, str):
        doc = inspect.getdoc(tool) if callable(tool) else None
        description = doc.strip().splitlines()[0] if doc else ""
    return ToolOut(name=str(name), description=description)
