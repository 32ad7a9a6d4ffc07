"""Refuse text that cannot be stored: NUL characters and lone UTF-16 surrogates.

Postgres refuses NUL in `text` and `jsonb`, and a lone surrogate (`"\\ud800"` in JSON) cannot
be encoded as UTF-8, so either one would fail a request after validation, or worse, midway
through a run. Every JSON body (`JsonBody`), live frame and query string is checked once, as
it is parsed, and refused with a 422 naming where the bad character is.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi.exceptions import RequestValidationError

_FORBIDDEN = re.compile("[\x00\ud800-\udfff]")

FORBIDDEN_TEXT_MSG = "NUL characters and lone surrogates (U+D800-U+DFFF) are not allowed"
FORBIDDEN_TEXT_TYPE = "string_forbidden_character"


def may_hold_forbidden(raw: bytes | str) -> bool:
    """Return False when the raw JSON cannot decode to a NUL or a lone surrogate.

    JSON can only carry them as `\\u` escapes, or as raw bytes (NUL, UTF-8-encoded surrogates
    starting with 0xED, which `json.loads` accepts) in bodies that are not plain UTF-8.
    """
    if isinstance(raw, str):
        return "\\u" in raw or "\x00" in raw or _FORBIDDEN.search(raw) is not None
    return b"\\u" in raw or b"\x00" in raw or b"\xed" in raw


def find_forbidden(value: Any) -> list[str | int] | None:
    """Return the location of the first string (value or key) holding a forbidden character."""
    stack: list[tuple[list[str | int], Any]] = [([], value)]
    while stack:  # iterative: a deeply nested body must not overflow the Python stack
        path, item = stack.pop()
        if isinstance(item, str):
            if _FORBIDDEN.search(item):
                return path
        elif isinstance(item, dict):
            for key, child in item.items():
                if isinstance(key, str) and _FORBIDDEN.search(key):
                    return [*path, key]
                stack.append(([*path, key], child))
        elif isinstance(item, list):
            stack.extend(([*path, i], child) for i, child in enumerate(item))
    return None


def printable(text: str) -> str:
    """Return `text` with forbidden characters escaped (`\\u0000`), safe to echo in a response."""
    return _FORBIDDEN.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


def forbidden_text_error(loc: list[str | int]) -> dict[str, Any]:
    """Return the validation error entry for a forbidden character at `loc`."""
    safe = tuple(printable(part) if isinstance(part, str) else part for part in loc)
    return {"loc": safe, "msg": FORBIDDEN_TEXT_MSG, "type": FORBIDDEN_TEXT_TYPE}


def check_body(body: Any) -> None:
    """Raise a 422 `RequestValidationError` when a parsed JSON body holds forbidden text."""
    loc = find_forbidden(body)
    if loc is not None:
        raise RequestValidationError([forbidden_text_error(["body", *loc])])
