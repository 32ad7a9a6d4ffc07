"""Gemini: the google-genai backend (generate, stream and live).

The client is built lazily, once per instance, with `genai.Client(http_options=...)`, so it
reads google-genai's standard environment: `GOOGLE_API_KEY`/`GEMINI_API_KEY`,
`GOOGLE_GEMINI_BASE_URL`, `GOOGLE_GENAI_USE_VERTEXAI`, `GOOGLE_CLOUD_PROJECT`,
`GOOGLE_CLOUD_LOCATION`.

Failures of a model call do not raise: `generate_content_async` yields one `LlmResponse` with
`error_code` (the API status name such as `RESOURCE_EXHAUSTED`, or the numeric code) and
`error_message`; a transport failure (connection refused, timeout) has code `UNAVAILABLE`.
Opening a live connection that fails raises `ModelError`. Without credentials the first call
raises `GeminiCredentialsError`, which names the variables to set.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncGenerator, AsyncIterator
from typing import Any

import httpx
from google import genai
from google.auth import exceptions as google_auth_errors
from google.genai import errors as genai_errors  # it defines its own CancelledError
from google.genai import types
from pydantic import PrivateAttr, ValidationError
from websockets.exceptions import WebSocketException

from app import __version__
from app.errors import ConfigError, ModelError
from app.events.llm_response import LlmResponse
from app.models.base_llm import BaseLlm
from app.models.gemini_llm_connection import GeminiLlmConnection, api_error_code
from app.models.llm_request import LlmRequest

logger = logging.getLogger(__name__)


def _transport_errors() -> tuple[type[Exception], ...]:
    """Return the transport exceptions of every HTTP stack google-genai may use."""
    found: list[type[Exception]] = [httpx.TransportError]
    with contextlib.suppress(ImportError):
        import httpx2  # google-genai 3.x's default backend

        found.append(httpx2.TransportError)
    with contextlib.suppress(ImportError):
        import aiohttp  # used by google-genai when installed

        found.append(aiohttp.ClientError)
    return tuple(found)


_TRANSPORT_ERRORS = _transport_errors()
_TRACKING = f"agent-service/{__version__}"

CREDENTIALS_HELP = (
    "Gemini needs credentials: set GOOGLE_API_KEY (or GEMINI_API_KEY) for the Gemini API, or "
    "GOOGLE_GENAI_USE_VERTEXAI=true with GOOGLE_CLOUD_PROJECT and GOOGLE_CLOUD_LOCATION (and "
    "Application Default Credentials, e.g. GOOGLE_APPLICATION_CREDENTIALS) for Vertex AI. "
    "To run offline, pass a model from the test kit instead, e.g. "
    "model=app.testing.ScriptedModel([...])."
)


class GeminiCredentialsError(ConfigError):
    """The google-genai client could not be built: no API key or Vertex AI setup found."""


class Gemini(BaseLlm):
    """Gemini through google-genai's async client: generate, stream and live."""

    model: str = "gemini-2.5-flash"
    """Default model name; `LlmRequest.model` overrides it per call."""

    http_options: types.HttpOptions | None = None
    """Client options (base URL, API version, headers, custom HTTP client)."""

    retry_options: types.HttpRetryOptions | None = None
    """Retries of failed HTTP calls; None means google-genai's default (no retry)."""

    _client: genai.Client | None = PrivateAttr(default=None)

    @classmethod
    def supported_models(cls) -> list[str]:
        """Return the model-name regexes Gemini serves."""
        return [
            r"gemini-.*",
            r"model-optimizer-.*",
            r"projects/.+/locations/.+/endpoints/.+",
            r"projects/.+/locations/.+/publishers/google/models/gemini.+",
        ]

    @property
    def api_client(self) -> genai.Client:
        """The google-genai client, created on first use and then reused."""
        if self._client is None:
            try:
                self._client = genai.Client(http_options=self._client_http_options())
            except ValidationError:
                raise  # bad options, not missing credentials
            except (ValueError, google_auth_errors.GoogleAuthError) as error:
                # google-genai's own message says what is missing, not how we read it.
                raise GeminiCredentialsError(f"{CREDENTIALS_HELP} ({error})") from error
        return self._client

    async def aclose(self) -> None:
        """Close the client's connection pools (a client passed in `http_options` stays open)."""
        if self._client is not None:
            client, self._client = self._client, None
            await client.aio.aclose()

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        """Call the model and yield its answer.

        Without `stream`, yields one response. With `stream`, yields a partial response per
        text chunk (`partial=True`, only that chunk's text parts), then one aggregated
        non-partial response: thought text, text, then every non-text part (function calls
        arrive whole), with the last chunk's usage metadata and finish reason. Chunks that
        carry no text are not yielded as partials. A failed call yields one error response
        (after the partials already yielded, without an aggregate) instead of raising;
        cancellation propagates.
        """
        model = llm_request.model or self.model
        # A shallow copy: the caller's config must look the same after the call.
        config = llm_request.config.model_copy(
            update={
                "automatic_function_calling": types.AutomaticFunctionCallingConfig(disable=True)
            }
        )
        try:
            if stream:
                async for response in self._stream(model, llm_request.contents, config):
                    yield response
            else:
                result = await self.api_client.aio.models.generate_content(
                    model=model, contents=list(llm_request.contents), config=config
                )
                yield LlmResponse.create(result)
        except genai_errors.APIError as error:
            code = api_error_code(error)
            logger.warning("model call failed model=%s code=%s", model, code)
            yield LlmResponse(error_code=code, error_message=_api_error_message(error))
        except _TRANSPORT_ERRORS as error:
            logger.warning("model unreachable model=%s error=%s", model, type(error).__name__)
            message = str(error) or type(error).__name__
            yield LlmResponse(error_code="UNAVAILABLE", error_message=message)

    async def _stream(
        self,
        model: str,
        contents: list[types.Content],
        config: types.GenerateContentConfig,
    ) -> AsyncIterator[LlmResponse]:
        chunks = await self.api_client.aio.models.generate_content_stream(
            model=model, contents=list(contents), config=config
        )
        aggregate = _StreamAggregate()
        async with contextlib.aclosing(chunks) as responses:  # type: ignore[type-var]
            async for chunk in responses:
                partial = aggregate.add(chunk)
                if partial is not None:
                    yield partial
        yield aggregate.result()

    @contextlib.asynccontextmanager
    async def connect(self, llm_request: LlmRequest) -> AsyncIterator[GeminiLlmConnection]:
        """Open a live session; `llm_request.config`'s system instruction and tools apply.

        Raises:
            ModelError: the session could not be opened (refused, rejected, bad setup).
        """
        model = llm_request.model or self.model
        update: dict[str, Any] = {}
        if llm_request.config.system_instruction is not None:
            update["system_instruction"] = llm_request.config.system_instruction
        if llm_request.config.tools:
            update["tools"] = llm_request.config.tools
        config = llm_request.live_connect_config.model_copy(update=update)
        async with contextlib.AsyncExitStack() as stack:
            try:
                session = await stack.enter_async_context(
                    self.api_client.aio.live.connect(model=model, config=config)
                )
            except genai_errors.APIError as error:
                raise ModelError(
                    f"live connect failed: {api_error_code(error)} {_api_error_message(error)}",
                    status=error.code,
                ) from error
            except (OSError, WebSocketException) as error:
                raise ModelError(f"live connect failed: UNAVAILABLE {error}") from error
            logger.info("live session opened model=%s", model)
            yield GeminiLlmConnection(session)

    def _client_http_options(self) -> types.HttpOptions:
        options = self.http_options or types.HttpOptions()
        headers = {"x-goog-api-client": _TRACKING, "user-agent": _TRACKING}
        headers.update(options.headers or {})
        update: dict[str, Any] = {"headers": headers}
        if self.retry_options is not None:
            update["retry_options"] = self.retry_options
        # Shallow: a custom httpx client in the options must stay the same object.
        return options.model_copy(update=update)


class _StreamAggregate:
    """Accumulates streamed chunks into partial responses and one final response."""

    def __init__(self) -> None:
        self.text = ""
        self.thought = ""
        self.text_signature: bytes | None = None
        self.other_parts: list[types.Part] = []
        self.last: types.GenerateContentResponse | None = None
        self.usage: types.GenerateContentResponseUsageMetadata | None = None
        self.finish_reason: types.FinishReason | None = None
        self.grounding: types.GroundingMetadata | None = None

    def add(self, chunk: types.GenerateContentResponse) -> LlmResponse | None:
        """Take one chunk; return the partial response to yield for it, if any."""
        self.last = chunk
        self.usage = chunk.usage_metadata or self.usage
        candidate = chunk.candidates[0] if chunk.candidates else None
        if candidate is None:
            return None
        self.finish_reason = candidate.finish_reason or self.finish_reason
        self.grounding = candidate.grounding_metadata or self.grounding
        text_parts: list[types.Part] = []
        for part in (candidate.content.parts if candidate.content else None) or []:
            if part.text is None:
                self.other_parts.append(part)
                continue
            text_parts.append(part)
            if part.thought:
                self.thought += part.text
            else:
                self.text += part.text
                self.text_signature = part.thought_signature or self.text_signature
        if not text_parts:
            return None
        return LlmResponse(
            content=types.Content(role="model", parts=text_parts),
            partial=True,
            model_version=chunk.model_version,
        )

    def result(self) -> LlmResponse:
        """Return the aggregated final response (or the error the last chunk carried)."""
        parts: list[types.Part] = []
        if self.thought:
            parts.append(types.Part(text=self.thought, thought=True))
        if self.text:
            parts.append(types.Part(text=self.text, thought_signature=self.text_signature))
        parts.extend(self.other_parts)
        if not parts:
            return LlmResponse.create(self.last or types.GenerateContentResponse())
        return LlmResponse(
            content=types.Content(role="model", parts=parts),
            grounding_metadata=self.grounding,
            usage_metadata=self.usage,
            finish_reason=self.finish_reason,
            model_version=self.last.model_version if self.last else None,
        )


def _api_error_message(error: genai_errors.APIError) -> str:
    if error.message:
        return str(error.message)
    return str(error)
