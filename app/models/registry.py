"""LLMRegistry: resolves model names such as `gemini-2.5-flash` to BaseLlm classes."""

from __future__ import annotations

import re
from functools import lru_cache

from app.models.base_llm import BaseLlm


class LLMRegistry:
    """Maps model-name regexes to BaseLlm subclasses; later registrations win."""

    _entries: list[tuple[re.Pattern[str], type[BaseLlm]]] = []

    @staticmethod
    def register(llm_cls: type[BaseLlm]) -> None:
        """Register every regex `llm_cls.supported_models()` returns."""
        for pattern in llm_cls.supported_models():
            LLMRegistry._entries.insert(0, (re.compile(pattern), llm_cls))
        _resolve_cached.cache_clear()

    @staticmethod
    def resolve(model: str) -> type[BaseLlm]:
        """Return the class serving `model`.

        Raises:
            ValueError: no registered class matches.
        """
        return _resolve_cached(model)

    @staticmethod
    def new_llm(model: str) -> BaseLlm:
        """Instantiate the class serving `model`."""
        return LLMRegistry.resolve(model)(model=model)


@lru_cache(maxsize=256)
def _resolve_cached(model: str) -> type[BaseLlm]:
    for pattern, llm_cls in LLMRegistry._entries:
        if pattern.fullmatch(model):
            return llm_cls
    raise ValueError(f"Model {model!r} is not registered; pass a BaseLlm instance instead.")
