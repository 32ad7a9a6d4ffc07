"""RunConfig and StreamingMode: per-run options for run_async and run_live."""

from __future__ import annotations

from enum import Enum
from typing import Any

from google.genai import types
from pydantic import BaseModel, ConfigDict, field_validator


class StreamingMode(Enum):
    """How model output reaches the caller."""

    NONE = None
    """One event per model response."""

    SSE = "sse"
    """Token streaming: partial events, then the aggregated final event."""

    BIDI = "bidi"
    """Live bidirectional streaming (run_live)."""


class RunConfig(BaseModel):
    """Options for one run; the defaults suit a text chat."""

    model_config = ConfigDict(extra="forbid", arbitrary_types_allowed=True)

    speech_config: types.SpeechConfig | None = None
    """Live: voice and language of the model's speech."""

    response_modalities: list[str] | None = None
    """Live: `["AUDIO"]` (default in run_live) or `["TEXT"]`."""

    save_input_blobs_as_artifacts: bool = False
    """Store inline data of the user message as artifacts instead of in the event."""

    support_cfc: bool = False
    """Compositional function calling (live models only)."""

    streaming_mode: StreamingMode = StreamingMode.NONE
    """NONE, SSE (token streaming) or BIDI."""

    output_audio_transcription: types.AudioTranscriptionConfig | None = None
    """Live: transcribe the model's speech."""

    input_audio_transcription: types.AudioTranscriptionConfig | None = None
    """Live: transcribe the user's speech."""

    realtime_input_config: types.RealtimeInputConfig | None = None
    """Live: voice activity detection settings."""

    enable_affective_dialog: bool | None = None
    """Live: let the model adapt to the user's tone."""

    proactivity: types.ProactivityConfig | None = None
    """Live: let the model decide not to answer."""

    session_resumption: types.SessionResumptionConfig | None = None
    """Live: ask the model for resumption handles (used to reconnect)."""

    context_window_compression: types.ContextWindowCompressionConfig | None = None
    """Live: compress long contexts instead of failing."""

    max_llm_calls: int = 500
    """Model calls allowed per invocation; <= 0 means unbounded."""

    custom_metadata: dict[str, Any] | None = None
    """Copied onto every event the run produces."""

    @field_validator("max_llm_calls")
    @classmethod
    def _check_max_llm_calls(cls, value: int) -> int:
        if value == 2**63 - 1:
            raise ValueError("max_llm_calls must be less than sys.maxsize")
        return value
