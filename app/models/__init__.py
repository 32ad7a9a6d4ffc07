"""Models: the BaseLlm seam, requests and responses, the registry and Gemini."""

from __future__ import annotations

from app.events.llm_response import LlmResponse
from app.models.base_llm import BaseLlm
from app.models.base_llm_connection import BaseLlmConnection
from app.models.gemini import Gemini, GeminiCredentialsError
from app.models.llm_request import LlmRequest
from app.models.registry import LLMRegistry

LLMRegistry.register(Gemini)

__all__ = [
    "BaseLlm",
    "BaseLlmConnection",
    "Gemini",
    "GeminiCredentialsError",
    "LLMRegistry",
    "LlmRequest",
    "LlmResponse",
]
