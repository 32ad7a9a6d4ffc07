"""Runner and InMemoryRunner: run an agent tree against a session.

`run_async` is the production entry point: it loads the session, records the user message,
picks the agent to run and yields each event after plugins saw it and the session service
stored it (partial token chunks are yielded, never stored), so what is streamed equals
what is stored.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator, Callable, Generator
from types import TracebackType
from typing import Any, Self

from google.genai import types

from app import _invocation
from app._debug_printer import format_event
from app._sync_bridge import iterate_in_thread
from app.agents.base_agent import BaseAgent
from app.agents.context_cache_config import ContextCacheConfig
from app.agents.invocation_context import InvocationContext
from app.agents.live_request_queue import LiveRequestQueue
from app.agents.run_config import RunConfig, StreamingMode
from app.apps.app import App, ResumabilityConfig
from app.artifacts.base_artifact_service import BaseArtifactService
from app.artifacts.in_memory_artifact_service import InMemoryArtifactService
from app.auth.credential_service.base_credential_service import BaseCredentialService
from app.errors import SessionNotFoundError
from app.events.event import Event, new_invocation_id
from app.memory.base_memory_service import BaseMemoryService
from app.memory.in_memory_memory_service import InMemoryMemoryService
from app.observability import logs, metrics
from app.plugins.base_plugin import BasePlugin
from app.plugins.plugin_manager import PluginManager
from app.sessions.base_session_service import BaseSessionService, GetSessionConfig
from app.sessions.in_memory_session_service import InMemorySessionService
from app.sessions.session import Session

logger = logging.getLogger(__name__)

__all__ = ["InMemoryRunner", "Runner"]


class Runner:
    """Runs an app's agents: sessions in, events out."""

    def __init__(
        self,
        *,
        app: App | None = None,
        app_name: str | None = None,
        agent: BaseAgent | None = None,
        plugins: list[BasePlugin] | None = None,
        artifact_service: BaseArtifactService | None = None,
        session_service: BaseSessionService,
        memory_service: BaseMemoryService | None = None,
        credential_service: BaseCredentialService | None = None,
        plugin_close_timeout: float = 5.0,
        auto_create_session: bool = False,
    ) -> None:
        # The messages are the reference runtime's, so code that matches on them keeps working.
        if app is not None and agent is not None:
            raise ValueError(
                "Only one of app, agent, or node may be provided, but got: "
                f"app={type(app).__name__}, agent={type(agent).__name__}. "
                "Pass exactly one to Runner()."
            )
        if app is not None:
            if plugins is not None:
                raise ValueError(
                    "When app is provided, plugins should not be provided and should be "
                    "provided in the app instead."
                )
            # As in the reference, app_name (when given) overrides the app's name.
            app_name, agent, plugins = app_name or app.name, app.root_agent, app.plugins
        elif agent is None:
            raise ValueError(
                "One of app, agent, or node must be provided. Got none. "
                "Pass exactly one to Runner()."
            )
        elif not app_name:
            raise ValueError("app_name is required when agent is provided without app.")
        self.app: App | None = app
        self.app_name: str = app_name
        self.agent: BaseAgent = agent
        self.session_service = session_service
        self.artifact_service = artifact_service
        self.memory_service = memory_service
        self.credential_service = credential_service
        self.auto_create_session = auto_create_session
        self.plugin_manager = PluginManager(
            plugins=list(plugins or []), close_timeout=plugin_close_timeout
        )
        self.context_cache_config: ContextCacheConfig | None = (
            app.context_cache_config if app is not None else None
        )
        self.resumability_config: ResumabilityConfig | None = (
            app.resumability_config if app is not None else None
        )
        self._owned_services: list[Any] = []

    # Entry points.

    async def run_async(
        self,
        *,
        user_id: str,
        session_id: str,
        invocation_id: str | None = None,
        new_message: types.Content | None = None,
        state_delta: dict[str, Any] | None = None,
        run_config: RunConfig | None = None,
        on_user_event: Callable[[Event], object] | None = None,
        new_invocation: bool = False,
    ) -> AsyncGenerator[Event, None]:
        """Run one invocation and yield its events.

        `on_user_event` is called with the user's event (message and/or state delta) once it
        is stored, or found already stored by a retry of `invocation_id`: from then on the
        invocation has written to the session, even if it fails before its first event.
        `new_invocation` says that `invocation_id` was just minted by the caller: it names a
        new invocation, so the session is not searched for a retry or a resume of it.

        Raises:
            SessionNotFoundError: the session does not exist (and auto_create_session is off).
            ValueError: the message contains function calls, or a resumable invocation to
                resume has no user message.
        """
        run_config = run_config or RunConfig()
        if new_message is not None:
            new_message = _invocation.normalize_user_message(new_message)
        session = await self._load_session(user_id, session_id)
        # Counted once the session is found: a 404 is not a run.
        meter = metrics.RunMeter(self.app_name, "run")
        status = "error"
        try:
            async with contextlib.aclosing(
                self._invoke(
                    session,
                    invocation_id,
                    new_message,
                    state_delta,
                    run_config,
                    on_user_event,
                    resume=bool(invocation_id) and not new_invocation,
                )
            ) as events:
                async for event in events:
                    meter.event()
                    yield event
            status = "completed"
        except (GeneratorExit, asyncio.CancelledError):
            status = "cancelled"  # the caller stopped early, or the task was cancelled
            raise
        finally:
            meter.finish(status)

    async def _invoke(
        self,
        session: Session,
        invocation_id: str | None,
        new_message: types.Content | None,
        state_delta: dict[str, Any] | None,
        run_config: RunConfig,
        on_user_event: Callable[[Event], object] | None,
        *,
        resume: bool,
    ) -> AsyncGenerator[Event, None]:
        """The invocation behind `run_async`, once its session is loaded."""
        ctx = self._new_context(session, invocation_id, run_config)
        logs.bind_run(self.app_name, session.user_id, session.id, ctx.invocation_id)
        if resume and ctx.is_resumable:
            ctx.user_content = new_message or _invocation.invocation_user_message(
                session, ctx.invocation_id
            )
            if ctx.user_content is None:
                raise ValueError(
                    f"No user message available for resuming invocation: {invocation_id}"
                )
        plugins = self.plugin_manager
        if new_message is not None:
            replaced = await plugins.run(
                "on_user_message_callback", invocation_context=ctx, user_message=new_message
            )
            new_message = replaced or new_message
            ctx.user_content = new_message
        if new_message is not None or state_delta:
            stored = (
                _invocation.stored_user_event(session, ctx.invocation_id, new_message)
                if resume
                else None
            )
            if stored is None:
                stored = await self.session_service.append_event(
                    session, _invocation.user_event(ctx, new_message, state_delta)
                )
            if on_user_event is not None:
                on_user_event(stored)
        early = await plugins.run("before_run_callback", invocation_context=ctx)
        if early is not None:
            event = Event(invocation_id=ctx.invocation_id, author=self.agent.name, content=early)
            yield await self._persist(ctx, event)
            await plugins.run("after_run_callback", invocation_context=ctx)
            return
        agent = self._agent_to_run(ctx, session, resume=resume)
        if ctx.end_of_agents.get(agent.name):
            await plugins.run("after_run_callback", invocation_context=ctx)
            return  # a resumed invocation that had already finished
        # aclosing: an early close by the caller must reach _run_agent now (after_run).
        async with contextlib.aclosing(self._run_agent(ctx, agent.run_async(ctx))) as events:
            async for event in events:
                yield event

    def run(
        self,
        *,
        user_id: str,
        session_id: str,
        new_message: types.Content | None = None,
        state_delta: dict[str, Any] | None = None,
        run_config: RunConfig | None = None,
    ) -> Generator[Event, None, None]:
        """Sync wrapper of `run_async` for scripts and tests (runs on a background thread)."""
        return iterate_in_thread(
            lambda: self.run_async(
                user_id=user_id,
                session_id=session_id,
                new_message=new_message,
                state_delta=state_delta,
                run_config=run_config,
            )
        )

    async def run_live(
        self,
        *,
        user_id: str | None = None,
        session_id: str | None = None,
        live_request_queue: LiveRequestQueue,
        run_config: RunConfig | None = None,
        session: Session | None = None,
    ) -> AsyncGenerator[Event, None]:
        """Run the agent in live (bidirectional audio) mode, relaying `live_request_queue`.

        `session` is deprecated: pass `user_id` and `session_id`.
        """
        run_config = (run_config or RunConfig()).model_copy()
        run_config.streaming_mode = StreamingMode.BIDI
        if not run_config.response_modalities:
            run_config.response_modalities = ["AUDIO"]
        if session is None:
            if user_id is None or session_id is None:
                raise ValueError("Pass user_id and session_id (or the deprecated session).")
            session = await self._load_session(user_id, session_id)
        ctx = self._new_context(session, None, run_config)
        ctx.live_request_queue = live_request_queue
        logs.bind_run(self.app_name, session.user_id, session.id, ctx.invocation_id)
        agent = _invocation.find_agent_to_run(session, self.agent)
        meter = metrics.RunMeter(self.app_name, "live")
        status = "error"
        try:
            # aclosing: an early close by the caller must reach _run_agent now (after_run).
            async with contextlib.aclosing(self._run_agent(ctx, agent.run_live(ctx))) as events:
                async for event in events:
                    meter.event()
                    yield event
            status = "completed"
        except (GeneratorExit, asyncio.CancelledError):
            status = "cancelled"
            raise
        finally:
            meter.finish(status)

    async def run_debug(
        self,
        user_messages: str | list[str],
        *,
        user_id: str = "debug_user_id",
        session_id: str = "debug_session_id",
        run_config: RunConfig | None = None,
        quiet: bool = False,
        verbose: bool = False,
    ) -> list[Event]:
        """Run messages one after another in a (created if needed) session; print a transcript."""
        messages = [user_messages] if isinstance(user_messages, str) else list(user_messages)
        session = await self.session_service.get_session(
            app_name=self.app_name, user_id=user_id, session_id=session_id
        )
        if session is None:
            await self.session_service.create_session(
                app_name=self.app_name, user_id=user_id, session_id=session_id
            )
        collected: list[Event] = []
        for text in messages:
            if not quiet:
                print(f"\nUser > {text}")  # noqa: T201 - run_debug prints by design
            message = types.Content(role="user", parts=[types.Part(text=text)])
            async for event in self.run_async(
                user_id=user_id, session_id=session_id, new_message=message, run_config=run_config
            ):
                collected.append(event)
                if not quiet:
                    for line in format_event(event, verbose=verbose):
                        print(line)  # noqa: T201 - run_debug prints by design
        return collected

    async def answer_open_calls(
        self,
        *,
        user_id: str,
        session_id: str,
        invocation_id: str | None = None,
        response: dict[str, Any] | None = None,
        recent_events: int = 50,
    ) -> int:
        """Store an error response for each function call a cancelled run left unanswered.

        A run cancelled mid-tool (client gone, shutdown) leaves a call without a response, and
        models refuse such a history; answering it keeps the session usable. Calls to
        long-running tools are left alone (their answer comes later by design). Only the
        newest `recent_events` events, and only `invocation_id`'s when given, are examined.
        Returns the number of calls answered.
        """
        session = await self.session_service.get_session(
            app_name=self.app_name,
            user_id=user_id,
            session_id=session_id,
            config=GetSessionConfig(num_recent_events=recent_events),
        )
        if session is None:
            return 0
        event = _invocation.open_calls_answer(
            session.events, invocation_id, response or {"error": "cancelled"}
        )
        if event is None:
            return 0
        await self.session_service.append_event(session, event)
        return len(event.get_function_responses())

    async def close_session(self, session: Session) -> bool:
        """Add the session to the memory service, so later searches can recall it.

        Only events that no earlier close added are sent, so closing twice stores nothing
        twice, and memories forgotten since are not brought back. Of concurrent closes of one
        session (other replicas included), one does the work: it returns True, the others
        (and a close with nothing new, or without a memory service) return False. Pass the
        session with all its events (`get_session` without a config): events missing from
        it are not added later.
        """
        if self.memory_service is None:
            return False
        previous = await self.session_service.claim_close(session)
        if previous is None:
            return False
        fresh = [e for e in session.events if e.seq is None or e.seq > previous]
        try:
            await self.memory_service.add_session_to_memory(
                session.model_copy(update={"events": fresh})
            )
        except BaseException:
            # Let a later close retry these events.
            await self.session_service.release_close(session, previous)
            raise
        return True

    async def close(self) -> None:
        """Close plugins (bounded time each) and the services this runner created.

        Raises:
            RuntimeError: some plugins failed to close (the services are closed anyway).
        """
        try:
            await self.plugin_manager.close()
        finally:
            for service in self._owned_services:
                await service.close()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    # Internals.

    async def _load_session(self, user_id: str, session_id: str) -> Session:
        # Shared: the history is read, never edited, and copying it would cost every turn.
        session = await self.session_service.get_session_shared(
            app_name=self.app_name, user_id=user_id, session_id=session_id
        )
        if session is not None:
            return session
        if not self.auto_create_session:
            raise SessionNotFoundError(session_id)
        return await self.session_service.create_session(
            app_name=self.app_name, user_id=user_id, session_id=session_id
        )

    def _agent_to_run(self, ctx: InvocationContext, session: Session, *, resume: bool) -> BaseAgent:
        """The agent that answers; a resumed resumable invocation restores its checkpoints."""
        if resume and ctx.is_resumable:
            ctx.populate_invocation_agent_states()
            if self.agent.name in ctx.end_of_agents:
                return self.agent  # the root checkpointed: it resumes its own sub-agents
        return _invocation.find_agent_to_run(session, self.agent)

    def _new_context(
        self, session: Session, invocation_id: str | None, run_config: RunConfig
    ) -> InvocationContext:
        return InvocationContext(
            invocation_id=invocation_id or new_invocation_id(),
            agent=self.agent,
            session=session,
            session_service=self.session_service,
            plugin_manager=self.plugin_manager,
            artifact_service=self.artifact_service,
            memory_service=self.memory_service,
            credential_service=self.credential_service,
            run_config=run_config,
            resumability_config=self.resumability_config,
            context_cache_config=self.context_cache_config,
        )

    async def _run_agent(
        self, ctx: InvocationContext, events: AsyncGenerator[Event, None]
    ) -> AsyncGenerator[Event, None]:
        """Persist and yield an agent's events, then run the after_run plugins.

        `after_run` also runs when the caller stops early (aclose), not on an external cancel.
        """
        plugins = self.plugin_manager
        try:
            async with contextlib.aclosing(events):
                async for event in events:
                    yield await self._persist(ctx, event)
        except GeneratorExit:
            await plugins.run("after_run_callback", invocation_context=ctx)
            raise
        except Exception as exc:
            await plugins.run_on_run_error_callback(invocation_context=ctx, error=exc)
            raise
        await plugins.run("after_run_callback", invocation_context=ctx)

    async def _persist(self, ctx: InvocationContext, event: Event) -> Event:
        """on_event plugins, then store (unless partial): the one path every event takes."""
        metadata = ctx.run_config.custom_metadata
        if metadata:
            event.custom_metadata = {**metadata, **(event.custom_metadata or {})}
        replaced = await self.plugin_manager.run(
            "on_event_callback", invocation_context=ctx, event=event
        )
        if replaced is not None:
            event = replaced
        if not event.partial:
            await self.session_service.append_event(ctx.session, event)
        return event


class InMemoryRunner(Runner):
    """A Runner with in-memory session, artifact, memory and credential services."""

    def __init__(
        self,
        agent: BaseAgent | None = None,
        *,
        app_name: str | None = None,
        plugins: list[BasePlugin] | None = None,
        app: App | None = None,
        plugin_close_timeout: float = 5.0,
    ) -> None:
        from app.auth.credential_service.in_memory_credential_service import (
            InMemoryCredentialService,
        )

        if app is None and app_name is None:
            app_name = "InMemoryRunner"
        session_service = InMemorySessionService()
        artifact_service = InMemoryArtifactService()
        memory_service = InMemoryMemoryService()
        super().__init__(
            app=app,
            app_name=app_name,
            agent=agent,
            plugins=plugins,
            session_service=session_service,
            artifact_service=artifact_service,
            memory_service=memory_service,
            credential_service=InMemoryCredentialService(),
            plugin_close_timeout=plugin_close_timeout,
        )
        self._owned_services = [session_service, artifact_service, memory_service]
