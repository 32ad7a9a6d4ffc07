"""What an id may hold: every id a client or an agent creates must be usable in a URL path.

Session ids (and the app and user ids of a path) are one path segment: 1 to 128 characters,
no `/`, no control characters, and not `.` or `..` (clients collapse those segments). Anything
else, spaces and non-ASCII included, works once percent-encoded.

Artifact names are the rest of the path (`.../artifacts/{name}`), so `/` separates segments:
1 to 256 characters, no control characters, no empty, `.` or `..` segment, and no last segment
`versions` after a `/` (`.../artifacts/a/versions` lists the versions of `a`).
"""

from __future__ import annotations

import re

from app.errors import InvalidRequestError

MAX_ID_LENGTH = 128
MAX_ARTIFACT_NAME_LENGTH = 256

_CHAR = r"[^/\x00-\x1f\x7f]"
_NOT_DOT = r"[^./\x00-\x1f\x7f]"

SEGMENT_PATTERN = rf"^(?:\.*{_NOT_DOT}{_CHAR}*|\.\.\.{_CHAR}*)$"
"""A path segment id: no `/` or control character, not `.` or `..` (no look-around, so
pydantic's regex engine and the OpenAPI document's consumers read it alike)."""

NAME_PATTERN = r"^[^\x00-\x1f\x7f]+$"
"""Artifact names in a path: any text without control characters (unknown names are a 404)."""

SESSION_ID_RULE = "1 to 128 characters, no '/' or control characters, not '.' or '..'"
ARTIFACT_NAME_RULE = (
    "1 to 256 characters, no control characters, '/'-separated segments that are not empty, "
    "'.' or '..', and no last segment 'versions' after a '/'"
)

_SEGMENT = re.compile(SEGMENT_PATTERN)
_NAME = re.compile(NAME_PATTERN)


def is_valid_segment_id(value: str) -> bool:
    """Return True for a usable session id (or app or user id)."""
    return 1 <= len(value) <= MAX_ID_LENGTH and _SEGMENT.fullmatch(value) is not None


def check_session_id(session_id: str) -> None:
    """Raise InvalidRequestError for a session id that could not be used in a URL."""
    if not is_valid_segment_id(session_id):
        raise InvalidRequestError(f"Invalid session id: {SESSION_ID_RULE}.")


def check_artifact_name(name: str) -> None:
    """Raise InvalidRequestError for an artifact name that could not be used in a URL."""
    segments = name.split("/")
    if (
        not 1 <= len(name) <= MAX_ARTIFACT_NAME_LENGTH
        or _NAME.fullmatch(name) is None
        or any(segment in ("", ".", "..") for segment in segments)
        or (len(segments) > 1 and segments[-1] == "versions")
    ):
        raise InvalidRequestError(f"Invalid artifact name: {ARTIFACT_NAME_RULE}.")
