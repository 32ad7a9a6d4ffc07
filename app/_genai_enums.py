"""Make google-genai's enums fail validation cleanly instead of crashing it.

google-genai's `CaseInSensitiveEnum._missing_` (the hook pydantic calls for a value that is not
a member) calls `value.upper()`: a number, bool, list or object given for any enum field of a
`types.*` model (`executableCode.language`, `codeExecutionResult.outcome`, ...) raised
`AttributeError`, which pydantic does not turn into a validation error, so bad client input
was a 500. `install()` wraps the hook once, for every enum of every google-genai model: a
non-string is "not a member" and pydantic reports the usual `enum` error with the field's
location.

An unknown string is kept by google-genai (with a warning) so that a newer API's enum values
still parse. That is right for model responses but not for client input: inside
`strict_enums()` an unknown string is refused too (names still match case-insensitively).
"""

from __future__ import annotations

import contextvars
import enum
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from google.genai import _common

_strict = contextvars.ContextVar("strict_genai_enums", default=False)
_installed = False


def install() -> None:
    """Wrap `CaseInSensitiveEnum._missing_` (idempotent)."""
    global _installed
    if _installed:
        return
    original = _common.CaseInSensitiveEnum.__dict__["_missing_"].__func__

    def _missing_(cls: type[enum.Enum], value: Any) -> Any:
        if not isinstance(value, str):
            return None
        if _strict.get():
            members = cls.__members__
            return members.get(value.upper()) or members.get(value.lower())
        return original(cls, value)

    _common.CaseInSensitiveEnum._missing_ = classmethod(_missing_)  # type: ignore[method-assign,assignment]
    _installed = True


@contextmanager
def strict_enums() -> Iterator[None]:
    """Refuse unknown enum strings in google-genai models validated in this block."""
    token = _strict.set(True)
    try:
        yield
    finally:
        _strict.reset(token)


install()
