"""LlmResponse: one response (or streamed chunk) from a model.

It lives here, below `models`, because `Event` extends it; `app.models` re-exports it.
"""

from __future__ import annotations

from typing import Any

from google.genai import types
from pydantic import BaseModel, ConfigDict
from pydantic.alias_generators import to_camel

from app.events.cache_metadata import CacheMetadata


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

    turn_complete_reason: types.TurnCompleteReason | None = None
    """Live: why the model's turn ended."""

    interaction_status: types.InteractionStatus | None = None
    """Live: whether the model is still working on the user's prompt (it may take turns)."""

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

    live_session_resumption_update: types.LiveServerSessionResumptionUpdate | None = None
    """Live: a handle the connection can be resumed with."""

    live_session_id: str | None = None
    """Live: the server's id for the live session."""

    go_away: types.LiveServerGoAway | None = None
    """Live: the server will close the connection soon."""

    voice_activity: types.VoiceActivity | None = None
    """Live: voice activity detected in the user's audio."""

    avg_logprobs: float | None = None
    """Average log probability of the candidate's tokens."""

    logprobs_result: types.LogprobsResult | None = None
    """Per-token log probabilities, when requested."""

    cache_metadata: CacheMetadata | None = None
    """The context cache used for this response, when caching is on."""

    citation_metadata: types.CitationMetadata | None = None
    """Sources the response cites."""

    interaction_id: str | None = None
    """Interactions API: the id that chains stateful interactions."""

    environment_id: str | None = None
    """Interactions API: the sandbox environment the response ran in."""

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
                    citation_metadata=candidate.citation_metadata,
                    avg_logprobs=candidate.avg_logprobs,
                    logprobs_result=candidate.logprobs_result,
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
