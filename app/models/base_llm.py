"""BaseLlm: the seam between agents and model backends."""

from __future__ import annotations

import abc
from collections.abc import AsyncGenerator
from contextlib import AbstractAsyncContextManager

from pydantic import BaseModel, ConfigDict

from app.events.llm_response import LlmResponse
from app.models.base_llm_connection import BaseLlmConnection
from app.models.llm_request import LlmRequest


class BaseLlm(BaseModel, abc.ABC):
    """A model backend. Subclass it and register it with `LLMRegistry` to add one."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    model: str
    """Model name this instance calls."""

    @classmethod
    def supported_models(cls) -> list[str]:
        """Return regexes of model names this class serves (for the registry)."""
        return []

    @abc.abstractmethod
    def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        """Yield the response; with `stream`, partial chunks first, then the aggregate."""

    def connect(self, llm_request: LlmRequest) -> AbstractAsyncContextManager[BaseLlmConnection]:
        """Open a live connection (run_live); not every backend supports it."""
        raise NotImplementedError(f"{type(self).__name__} does not support live connections.")
