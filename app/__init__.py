"""agent-service: an agent runtime (Runner, agents, sessions) served over HTTP."""

from __future__ import annotations

from app import _genai_enums as _genai_enums  # fixes google-genai enum validation on import

__version__ = "0.1.0"
