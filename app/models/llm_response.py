"""LlmResponse under the models package, where the reference runtime keeps it."""

from __future__ import annotations

from app.events.llm_response import LlmResponse

__all__ = ["LlmResponse"]
