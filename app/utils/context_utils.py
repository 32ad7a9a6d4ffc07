"""Async context helpers, under the name the reference runtime uses."""

from __future__ import annotations

from contextlib import aclosing

Aclosing = aclosing
"""Close an async generator when the `async with` block exits (`contextlib.aclosing`)."""

__all__ = ["Aclosing"]
