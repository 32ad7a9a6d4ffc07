"""AlreadyExistsError under the reference runtime's module path."""

from __future__ import annotations

from app.errors import AlreadyExistsError

__all__ = ["AlreadyExistsError"]
