"""LLMRegistry: model names resolve to BaseLlm classes by regex."""

from __future__ import annotations

from collections.abc import AsyncGenerator, Iterator

import pytest

from app.events import LlmResponse
from app.models import BaseLlm, Gemini, LLMRegistry, LlmRequest
from app.models import registry as registry_module


class _StubLlm(BaseLlm):
    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        yield LlmResponse()


class AcmeLlm(_StubLlm):
    @classmethod
    def supported_models(cls) -> list[str]:
        return [r"acme-test-\d+", r"acme-test-legacy"]


class AcmeV2Llm(_StubLlm):
    @classmethod
    def supported_models(cls) -> list[str]:
        return [r"acme-test-2"]


@pytest.fixture(autouse=True)
def isolated_registry(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The registry is process-wide: register on a copy and restore the original after."""
    monkeypatch.setattr(LLMRegistry, "_entries", list(LLMRegistry._entries))
    yield
    monkeypatch.undo()
    # Resolutions cached while our entries were present must not outlive them.
    registry_module._resolve_cached.cache_clear()


def test_registered_class_resolves_every_name_its_patterns_match() -> None:
    LLMRegistry.register(AcmeLlm)

    assert LLMRegistry.resolve("acme-test-1") is AcmeLlm
    assert LLMRegistry.resolve("acme-test-42") is AcmeLlm
    assert LLMRegistry.resolve("acme-test-legacy") is AcmeLlm


def test_pattern_must_match_the_whole_name() -> None:
    LLMRegistry.register(AcmeLlm)

    for name in ("acme-test-1-preview", "my-acme-test-1"):
        with pytest.raises(ValueError, match=name):
            LLMRegistry.resolve(name)


def test_unknown_model_is_a_value_error_naming_it() -> None:
    with pytest.raises(ValueError, match="no-such-model-xyz"):
        LLMRegistry.resolve("no-such-model-xyz")


def test_later_registration_wins_even_after_a_cached_resolve() -> None:
    LLMRegistry.register(AcmeLlm)
    assert LLMRegistry.resolve("acme-test-2") is AcmeLlm

    LLMRegistry.register(AcmeV2Llm)

    assert LLMRegistry.resolve("acme-test-2") is AcmeV2Llm
    assert LLMRegistry.resolve("acme-test-3") is AcmeLlm


def test_new_llm_instantiates_the_class_with_the_model_name() -> None:
    LLMRegistry.register(AcmeLlm)

    llm = LLMRegistry.new_llm("acme-test-7")

    assert isinstance(llm, AcmeLlm)
    assert llm.model == "acme-test-7"


def test_gemini_models_are_registered_by_default() -> None:
    assert LLMRegistry.resolve("gemini-2.5-flash") is Gemini
