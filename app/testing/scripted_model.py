"""ScriptedModel: a BaseLlm that answers from a script, for tests and benchmarks."""

from __future__ import annotations

import inspect
import re
from collections.abc import AsyncGenerator, Callable, Iterable
from contextlib import AbstractAsyncContextManager
from typing import Any

from google.genai import types
from pydantic import Field, PrivateAttr

from app.events.llm_response import LlmResponse
from app.models.base_llm import BaseLlm
from app.models.base_llm_connection import BaseLlmConnection
from app.models.llm_request import LlmRequest

_CHUNK = re.compile(r"\S+\s*|\s+")


class ScriptExhaustedError(RuntimeError):
    """The model was called more often than the script has items."""


class ScriptedModel(BaseLlm):
    """Each model call consumes the next item of `responses`.

    An item is a `str` (text reply), a `types.Part` or list of parts (e.g. function calls),
    an `LlmResponse` (used as is), an `Exception` (raised), or a callable taking the
    LlmRequest and returning (or awaiting to) one of those. Under token streaming a text
    reply arrives as word chunks (partial) followed by the aggregated final response.
    """

    model: str = "scripted"
    responses: list[Any] = Field(default_factory=list)
    """The script."""

    requests: list[LlmRequest] = Field(default_factory=list)
    """Every request received, in order."""

    _index: int = PrivateAttr(default=0)

    def __init__(self, responses: Iterable[Any] | None = None, /, **data: Any) -> None:
        """Take the script positionally (`ScriptedModel(["Hi."])`) or as `responses=`."""
        if responses is not None:
            if "responses" in data:
                raise TypeError("ScriptedModel got its script both positionally and as responses=")
            data["responses"] = list(responses)
        super().__init__(**data)

    @property
    def calls(self) -> int:
        """How many items were consumed."""
        return self._index

    def _next_item(self, llm_request: LlmRequest) -> Any:
        self.requests.append(llm_request)
        if self._index >= len(self.responses):
            raise ScriptExhaustedError(
                f"ScriptedModel has no response left for call #{self._index + 1} "
                f"(the script has {len(self.responses)} items)."
            )
        item = self.responses[self._index]
        self._index += 1
        return item

    async def generate_content_async(
        self, llm_request: LlmRequest, stream: bool = False
    ) -> AsyncGenerator[LlmResponse, None]:
        """Yield the next scripted response (streamed as word chunks for text)."""
        item = self._next_item(llm_request)
        if isinstance(item, Callable) and not isinstance(item, BaseException | type):  # type: ignore[arg-type]
            item = item(llm_request)
            if inspect.isawaitable(item):
                item = await item
        if isinstance(item, BaseException):
            raise item
        if isinstance(item, LlmResponse):
            yield item
            return
        if isinstance(item, str) and stream:
            chunks = _CHUNK.findall(item) or [item]
            for chunk in chunks:
                yield LlmResponse(
                    content=types.Content(role="model", parts=[types.Part(text=chunk)]),
                    partial=True,
                )
        yield LlmResponse(content=to_content(item))

    def connect(self, llm_request: LlmRequest) -> AbstractAsyncContextManager[BaseLlmConnection]:
        """Open a scripted live connection; each user turn consumes the next item.

        See `app.testing.scripted_live` for how items are answered live.
        """
        from app.testing.scripted_live import connect_scripted

        return connect_scripted(self, llm_request, self._next_item)


def to_content(item: Any) -> types.Content:
    """Turn a script item (text, part or parts) into a model Content."""
    if isinstance(item, str):
        parts = [types.Part(text=item)]
    elif isinstance(item, types.Part):
        parts = [item]
    elif isinstance(item, list) and all(isinstance(p, types.Part) for p in item):
        parts = list(item)
    elif isinstance(item, types.Content):
        return item
    else:
        raise TypeError(f"Unsupported ScriptedModel item: {item!r}")
    return types.Content(role="model", parts=parts)


def function_call(
    name: str, args: dict[str, Any] | None = None, id: str | None = None
) -> types.Part:
    """A function-call part, for scripts: `function_call("get_weather", {"city": "Paris"})`."""
    return types.Part(function_call=types.FunctionCall(name=name, args=args or {}, id=id))


__all__ = ["ScriptExhaustedError", "ScriptedModel", "function_call", "to_content"]
