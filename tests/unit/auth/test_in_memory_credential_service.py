"""InMemoryCredentialService: credentials keyed by app, user and credential key."""

from __future__ import annotations

import pytest

from app.agents import CallbackContext, InvocationContext, LlmAgent
from app.auth import AuthConfig, AuthCredential
from app.auth.credential_service import InMemoryCredentialService
from app.plugins import PluginManager
from app.sessions import InMemorySessionService, Session
from app.testing import ScriptedModel


def context(app: str = "app", user: str = "u1", session_id: str = "s1") -> CallbackContext:
    invocation = InvocationContext(
        invocation_id="e-test",
        agent=LlmAgent(name="assistant", model=ScriptedModel()),
        session=Session(id=session_id, app_name=app, user_id=user),
        session_service=InMemorySessionService(),
        plugin_manager=PluginManager(),
    )
    return CallbackContext(invocation)


def config(key: str, api_key: str | None = None) -> AuthConfig:
    exchanged = AuthCredential(auth_type="apiKey", api_key=api_key) if api_key else None
    return AuthConfig(credential_key=key, exchanged_auth_credential=exchanged)


@pytest.fixture
def service() -> InMemoryCredentialService:
    return InMemoryCredentialService()


async def test_saved_credential_loads_back(service: InMemoryCredentialService) -> None:
    await service.save_credential(config("github", "tok-1"), context())

    loaded = await service.load_credential(config("github"), context())

    assert loaded == AuthCredential(auth_type="apiKey", api_key="tok-1")


async def test_nothing_saved_loads_none(service: InMemoryCredentialService) -> None:
    assert await service.load_credential(config("github"), context()) is None


async def test_credential_is_shared_by_the_users_sessions(
    service: InMemoryCredentialService,
) -> None:
    await service.save_credential(config("github", "tok-1"), context(session_id="s1"))

    loaded = await service.load_credential(config("github"), context(session_id="s2"))

    assert loaded is not None and loaded.api_key == "tok-1"


@pytest.mark.parametrize(
    ("app", "user", "key"),
    [("other-app", "u1", "github"), ("app", "u2", "github"), ("app", "u1", "gitlab")],
    ids=["other-app", "other-user", "other-key"],
)
async def test_credential_is_keyed_by_app_user_and_credential_key(
    service: InMemoryCredentialService, app: str, user: str, key: str
) -> None:
    await service.save_credential(config("github", "tok-1"), context())

    assert await service.load_credential(config(key), context(app=app, user=user)) is None


async def test_saving_again_replaces_the_credential(service: InMemoryCredentialService) -> None:
    await service.save_credential(config("github", "old"), context())
    await service.save_credential(config("github", "new"), context())

    loaded = await service.load_credential(config("github"), context())

    assert loaded is not None and loaded.api_key == "new"


async def test_saving_without_an_exchanged_credential_keeps_the_stored_one(
    service: InMemoryCredentialService,
) -> None:
    await service.save_credential(config("github", "tok-1"), context())
    await service.save_credential(config("github"), context())

    loaded = await service.load_credential(config("github"), context())

    assert loaded is not None and loaded.api_key == "tok-1"


async def test_callback_context_saves_and_loads_through_the_configured_service(
    service: InMemoryCredentialService,
) -> None:
    writer, reader = context(session_id="s1"), context(session_id="s2")
    writer.invocation_context.credential_service = service
    reader.invocation_context.credential_service = service

    await writer.save_credential(config("github", "tok-9"))
    loaded = await reader.load_credential(config("github"))

    assert loaded is not None and loaded.api_key == "tok-9"
