"""Public test kit: a scripted model and a fake Gemini server (REST + Live)."""

from __future__ import annotations

from app.testing.demo_model import DemoModel
from app.testing.fake_gemini import (
    FakeGemini,
    FakeGeminiError,
    FakeLiveInterrupt,
    serve_fake_gemini,
)
from app.testing.scripted_model import (
    ScriptedModel,
    ScriptExhaustedError,
    function_call,
)

__all__ = [
    "DemoModel",
    "FakeGemini",
    "FakeGeminiError",
    "FakeLiveInterrupt",
    "ScriptExhaustedError",
    "ScriptedModel",
    "function_call",
    "serve_fake_gemini",
]
