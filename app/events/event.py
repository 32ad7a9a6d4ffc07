"""Event: one entry in a session's history, authored by the user or an agent."""

from __future__ import annotations

import copy
import enum
import time
import uuid
from typing import Any

from google.genai import types
from pydantic import BaseModel, ConfigDict, Field, PrivateAttr
from pydantic.alias_generators import to_camel

from app.events.event_actions import EventActions
from app.events.llm_response import LlmResponse


def new_event_id() -> str:
    """Return a fresh event id (a uuid4 string)."""
    return str(uuid.uuid4())


def new_invocation_id() -> str:
    """Return a fresh invocation id (`e-<uuid4>`)."""
    return "e-" + str(uuid.uuid4())


class NodeInfo(BaseModel):
    """Where in a reference-runtime workflow graph an event came from (carried, not used)."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, extra="forbid")

    path: str = ""
    output_for: list[str] | None = None
    message_as_output: bool | None = None


class Event(LlmResponse):
    """An LlmResponse with authorship, actions and its place in the session.

    Serializes to the camelCase JSON the HTTP API emits with `to_json()`; both key cases are
    accepted on input.
    """

    id: str = Field(default_factory=new_event_id)
    """Unique id; streamed partial chunks share the id of their final event."""

    invocation_id: str = ""
    """The invocation (one `run_async` call) that produced the event."""

    author: str
    """`user` or the name of the agent that produced the event."""

    branch: str | None = None
    """Dotted agent path (`root.child`) isolating parallel branches' histories."""

    actions: EventActions = Field(default_factory=EventActions)
    """State and artifact deltas, transfer, escalation."""

    long_running_tool_ids: set[str] | None = None
    """Ids of function calls whose tools run on after the call returns."""

    output: Any | None = None
    """Reference workflow nodes' output value (stored and returned; not interpreted here)."""

    node_info: NodeInfo | None = None
    """Reference workflow node metadata (stored and returned; not interpreted here)."""

    isolation_scope: str | None = None
    """Reference scope tag (stored and returned; history is not filtered by it here)."""

    timestamp: float = Field(default_factory=time.time)
    """Seconds since the epoch."""

    seq: int | None = None
    """Position in the session (1, 2, 3...), set when the event is stored."""

    # Per-viewer model contents derived from this event (see flows/contents.py), so that
    # building a request does not re-derive the whole history on every model call.
    _views: dict[str, Any] = PrivateAttr(default_factory=dict)
    # (seq, content, json) of a stored event: it is encoded once, when stored, and replayed
    # (SSE, live, the event log) from that string. Stored events are not mutated.
    _json: tuple[int, Any, str] | None = PrivateAttr(default=None)

    @classmethod
    def from_stored_json(cls, raw: str | bytes) -> Event:
        """Parse a stored event, keeping `raw` as its JSON so it is never re-encoded."""
        event = cls.model_validate_json(raw)
        if event.seq is not None:
            text = raw if isinstance(raw, str) else raw.decode()
            event.__pydantic_private__["_json"] = (event.seq, event.content, text)  # type: ignore[index]
        return event

    def __eq__(self, other: object) -> bool:
        """Equal when every field is: the private caches (encoded JSON, views) do not count."""
        if not isinstance(other, Event):
            return NotImplemented
        return (
            type(self) is type(other)
            and self.__dict__ == other.__dict__
            and self.__pydantic_extra__ == other.__pydantic_extra__
        )

    __hash__ = None  # type: ignore[assignment]  # mutable, like every pydantic model

    def detached(self, *, keep_json: bool = False) -> Event:
        """Return a deep copy that shares nothing mutable with this event.

        Stores keep detached copies of what they store and hand detached copies out, so an
        edit on either side changes nothing stored or cached. Much cheaper than
        `model_copy(deep=True)` or a JSON round trip. `keep_json` carries the encoded JSON
        over, for a copy nobody will edit (a store's own).
        """
        clone: Event = _detached_model(self)
        cached = self.__pydantic_private__["_json"]  # type: ignore[index]
        json = None
        if keep_json and cached is not None and cached[0] == self.seq and cached[1] is self.content:
            json = (clone.seq, clone.content, cached[2])
        object.__setattr__(clone, "__pydantic_private__", {"_views": {}, "_json": json})
        return clone

    def is_final_response(self) -> bool:
        """Return True when this event ends the agent's turn for the user."""
        if self.actions.skip_summarization or self.long_running_tool_ids:
            return True
        if self.error_code and not self.partial and not self.get_function_calls():
            return True
        return (
            not self.get_function_calls()
            and not self.get_function_responses()
            and not self.partial
            and not self.has_trailing_code_execution_result()
        )

    def get_function_calls(self) -> list[types.FunctionCall]:
        """Return the function calls in the content, in order."""
        if self.content is None or not self.content.parts:
            return []
        return [p.function_call for p in self.content.parts if p.function_call]

    def get_function_responses(self) -> list[types.FunctionResponse]:
        """Return the function responses in the content, in order."""
        if self.content is None or not self.content.parts:
            return []
        return [p.function_response for p in self.content.parts if p.function_response]

    def has_trailing_code_execution_result(self) -> bool:
        """Return True when the last part is a code execution result."""
        if self.content is None or not self.content.parts:
            return False
        return self.content.parts[-1].code_execution_result is not None

    def text(self) -> str:
        """Return the concatenated text parts (thoughts excluded)."""
        if self.content is None or not self.content.parts:
            return ""
        return "".join(p.text for p in self.content.parts if p.text and not p.thought)

    def to_json(self) -> str:
        """Serialize as the API does: camelCase, no nulls, bytes as base64.

        A stored event (one with a `seq`) is encoded once; later calls return that string.
        """
        private: dict[str, Any] = self.__pydantic_private__  # type: ignore[assignment]
        cached = private["_json"]
        if cached is not None and cached[0] == self.seq and cached[1] is self.content:
            return cached[2]
        text = self.model_dump_json(by_alias=True, exclude_none=True)
        if self.seq is not None:
            private["_json"] = (self.seq, self.content, text)
        return text

    def to_dict(self) -> dict[str, object]:
        """Return the JSON-compatible dict form of `to_json()`."""
        return self.model_dump(mode="json", by_alias=True, exclude_none=True)


_ATOMIC = frozenset({str, bytes, int, float, bool, type(None)})
"""Types whose values need no copy (checked by exact type: the common case is fast)."""


def _detached_model(model: Any) -> Any:
    """Copy a pydantic model without validation, detaching every mutable value inside."""
    clone = model.__class__.__new__(model.__class__)
    values = {
        name: value if type(value) in _ATOMIC else _detached_value(value)
        for name, value in model.__dict__.items()
    }
    object.__setattr__(clone, "__dict__", values)
    object.__setattr__(clone, "__pydantic_fields_set__", set(model.__pydantic_fields_set__))
    extra = model.__pydantic_extra__
    object.__setattr__(
        clone, "__pydantic_extra__", None if extra is None else _detached_value(extra)
    )
    private = model.__pydantic_private__
    object.__setattr__(clone, "__pydantic_private__", None if private is None else dict(private))
    return clone


def _detached_value(value: Any) -> Any:
    if type(value) in _ATOMIC or isinstance(
        value, str | bytes | int | float | enum.Enum | frozenset
    ):
        return value
    if isinstance(value, BaseModel):
        return _detached_model(value)
    if isinstance(value, list):
        return [_detached_value(item) for item in value]
    if isinstance(value, dict):
        return {key: _detached_value(item) for key, item in value.items()}
    if isinstance(value, set):
        return set(value)  # of hashable, hence (by convention) immutable, items
    if isinstance(value, tuple):
        return tuple(_detached_value(item) for item in value)
    return copy.deepcopy(value)
