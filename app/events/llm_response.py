"""LlmResponse: one response (or streamed chunk) from a model.

It lives here, below `models`, because `Event` extends it; `app.models` re-exports it.
"""

from __future__ import annotations

from typing import Any

from google.genai import types
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel


class LlmResponse(BaseModel):
    """A model response: content plus streaming, live and error markers."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        ser_json_bytes="base64",
        val_json_bytes="base64",
    )

    content: types.Content | None = None
    """What the model said: text, function calls, inline data."""

    grounding_metadata: types.GroundingMetadata | None = None
    """Grounding sources, when the model used any."""

    partial: bool | None = None
    """A streamed chunk; the aggregated final response follows. Never stored."""

    turn_complete: bool | None = None
    """Live: the model finished its turn."""

    finish_reason: types.FinishReason | None = None
    """Why generation stopped."""

    error_code: str | None = None
    """Set when the model call failed; the message is in `error_message`."""

    error_message: str | None = None
    """Human-readable error text."""

    interrupted: bool | None = None
    """Live: the user interrupted the model's turn."""

    custom_metadata: dict[str, Any] | None = None
    """Free-form metadata (e.g. copied from `RunConfig.custom_metadata`)."""

    usage_metadata: types.GenerateContentResponseUsageMetadata | None = None
    """Token counts reported by the model."""

    input_transcription: types.Transcription | None = None
    """Live: transcription of the user's audio."""

    output_transcription: types.Transcription | None = None
    """Live: transcription of the model's audio."""

    model_version: str | None = None
    """The model version that answered."""

    @classmethod
    def create(cls, response: types.GenerateContentResponse) -> LlmResponse:
        """Build an LlmResponse from a google-genai `GenerateContentResponse`."""
        usage = response.usage_metadata
        if response.candidates:
            candidate = response.candidates[0]
            if candidate.content and candidate.content.parts:
                return cls(
                    content=candidate.content,
                    grounding_metadata=candidate.grounding_metadata,
                    usage_metadata=usage,
                    finish_reason=candidate.finish_reason,
                    model_version=response.model_version,
                )
            if candidate.finish_reason and candidate.finish_reason != types.FinishReason.STOP:
                return cls(
                    error_code=str(candidate.finish_reason.value),
                    error_message=candidate.finish_message or "The model returned no content.",
                    finish_reason=candidate.finish_reason,
                    usage_metadata=usage,
                    model_version=response.model_version,
                )
            return cls(
                content=candidate.content,
                finish_reason=candidate.finish_reason,
                usage_metadata=usage,
                model_version=response.model_version,
            )
        feedback = response.prompt_feedback
        if feedback and feedback.block_reason:
            return cls(
                error_code=str(feedback.block_reason.value),
                error_message=feedback.block_reason_message or "The prompt was blocked.",
                usage_metadata=usage,
            )
        return cls(
            error_code="UNKNOWN_ERROR",
            error_message="The model returned no candidates.",
            usage_metadata=usage,
        )
